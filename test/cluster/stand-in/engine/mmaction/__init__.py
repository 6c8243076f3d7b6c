# Stand-in for the mmaction2 package (tests only): preflight imports it and prints the version.
__version__ = '0.0.0-standin'
