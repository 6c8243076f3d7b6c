# Stand-in for the decord package (tests only): preflight imports the configured decoder from the engine folder.
__version__ = '0.0.0-standin'
