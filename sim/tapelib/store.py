"""The library's state file: read and written under an exclusive lock, replaced atomically.

Every stand-in process (mtx, mkltfs, ltfs and its daemon, the admin CLI) goes through
open_library(), so concurrent runs see each other's changes whole or not at all."""

import fcntl
import json
import os
from contextlib import contextmanager

from . import host
from .model import Library, LibraryError

STATE_FILE = 'state.json'
LOCK_FILE = 'state.lock'
LTFS_MODULE = 'sim.tapelib.ltfs'


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
        forget_finished_ltfs(library)
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


def ltfs_running(library, mount):
    return host.process_alive(mount.pid, LTFS_MODULE, library.root)


def forget_finished_ltfs(library):
    """Drop the record of an ltfs whose process is gone and whose mounts are gone too.

    A process that died (kill -9) while its mounts stay keeps its record: the tape stays locked
    in the drive, as a real drive keeps medium removal prevented, until a new ltfs mounts the
    tape and unmounts it cleanly, or `python -m sim.tapelib cleanup` is run."""
    for drive in library.drives:
        mount = drive.mount
        if mount is None or ltfs_running(library, mount):
            continue
        if host.mounted_at(mount.mountpoint, mount.device_numbers) or host.mounted_at(mount.private):
            continue
        drive.mount = None
