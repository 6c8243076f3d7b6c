# Stand-in for the official config of the same name (tests only); the stand-in train.py never reads it.
