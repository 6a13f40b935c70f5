"""The library's state file: read and written under an exclusive lock, replaced atomically.

Every process that reads or changes the robot's state (the SCSI model behind each mtx and tapeinfo
run, the admin CLI) goes through open_library(), so concurrent runs see each other's changes whole
or not at all."""

import fcntl
import json
import os
from contextlib import contextmanager

from .model import Library, LibraryError

STATE_FILE = 'state.json'
LOCK_FILE = 'state.lock'


def state_path(root):
    return os.path.join(root, STATE_FILE)


def is_library(root):
    return os.path.isfile(state_path(root))


@contextmanager
def open_library(root):
    """The library, locked for this process; saved when the block ends without an exception."""
    root = os.path.abspath(root)
    if not is_library(root):
        raise LibraryError(
            f'{root} is not a virtual tape library (no {STATE_FILE}; '
            f'create one with: python -m sim.tapelib init {root} ...)'
        )
    with open(os.path.join(root, LOCK_FILE), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(state_path(root)) as file:
            library = Library.from_json(json.load(file))
        yield library
        save(library)


def save(library):
    path = state_path(library.root)
    temporary = f'{path}.{os.getpid()}.tmp'
    with open(temporary, 'w') as file:
        json.dump(library.to_json(), file, indent=1)
        file.write('\n')
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(library.root, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
