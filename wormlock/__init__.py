"""The core of qfs_filelock.py: watch a cluster directory and WORM-lock the files written there."""
