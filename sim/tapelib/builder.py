"""`init`: lay out a library directory, its device files and the stand-in executables."""

import os
import shlex
import shutil
import sys

from .model import LibraryError, new_library
from .store import LOCK_FILE, is_library, save

COMMANDS = ('mtx', 'tapeinfo', 'mkltfs', 'ltfs')
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WRAPPER = """#!/bin/sh
# {command} stand-in of the virtual tape library in {root} (sim/tapelib; see its __init__.py)
PYTHONPATH={project}
export PYTHONPATH
exec {interpreter} -P -S -m sim.tapelib.{command} --library {root} --argv0 "$0" "$@"
"""


def create(root, *, slots, drives, tapes, capacity, import_export=0, index_write_seconds=0.5):
    """Make the library in root (missing or empty directory); returns the Library."""
    root = os.path.abspath(root)
    if is_library(root):
        raise LibraryError(
            f'{root} already holds a virtual library: remove it first '
            f'(python -m sim.tapelib cleanup {root}; rm -r {root})'
        )
    if os.path.exists(root) and (not os.path.isdir(root) or os.listdir(root)):
        raise LibraryError(f'{root} exists and is not an empty directory')
    library = new_library(
        root,
        slots=slots,
        drives=drives,
        tapes=tapes,
        capacity=capacity,
        import_export=import_export,
        index_write_seconds=index_write_seconds,
    )
    for directory in ('bin', 'libexec', 'dev', 'tapes', 'run', 'log', 'mnt'):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    for device in [library.changer_device, *(drive.device for drive in library.drives)]:
        with open(device, 'w'):
            pass
    write_executables(root)
    with open(os.path.join(root, LOCK_FILE), 'a'):
        pass
    save(library)
    return library


def write_executables(root):
    """DIR/bin/<command>: shell wrappers that run the stand-in modules.

    They exec the interpreter through a symlink named like the command (DIR/libexec/ltfs ...), so
    the process's name and argv[0] are "ltfs": tools that find the ltfs daemon by name
    (pgrep ltfs, /proc/PID/comm, basename of argv[0]) see it as they would see the real one.
    -P keeps the caller's working directory off sys.path; -S skips site-packages (the stand-ins
    use the standard library only, and start faster without it)."""
    interpreter = os.path.realpath(sys.executable)
    for command in COMMANDS:
        alias = os.path.join(root, 'libexec', command)
        if os.path.lexists(alias):
            os.unlink(alias)
        os.symlink(interpreter, alias)
        wrapper = os.path.join(root, 'bin', command)
        with open(wrapper, 'w') as file:
            file.write(
                WRAPPER.format(
                    command=command,
                    root=shlex.quote(root),
                    project=shlex.quote(PROJECT_ROOT),
                    interpreter=shlex.quote(alias),
                )
            )
        os.chmod(wrapper, 0o755)


def config_lines(library):
    """The pytarchive.conf lines that point pytarchive at this library."""
    root = library.root
    first = library.drives[0]
    lines = [
        '[General]',
        f'tape_max_size = {library.capacity}',
        '',
        '[Device]',
        f'library = {library.changer_device}',
        f'drive_serial = {first.serial}',
        f'drive_index = {first.index}',
        f'drive_device = {first.device}',
        f'mountpoint = {root}/mnt',
    ]
    lines += [f'{command} = {root}/bin/{command}' for command in COMMANDS]
    lines.append(f'umount = {shutil.which("umount") or "umount"}')
    lines += [
        f'# drive {drive.index}: drive_serial = {drive.serial}, drive_device = {drive.device}'
        for drive in library.drives[1:]
    ]
    return lines
