"""`init`: lay out a library directory (the changer's device, the cartridges, a mount point) and say
how pytarchive reaches it: the real mtx and tapeinfo through the SCSI shim, the real LTFS."""

import os
import shlex
import shutil
import sys
from pathlib import Path

from . import cartridge
from .model import LibraryError, new_library
from .store import LOCK_FILE, is_library, save

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LTFS_BIN = PROJECT_ROOT / 'build' / 'ltfs' / 'bin'
SHIM = PROJECT_ROOT / 'build' / 'tapelib' / 'libscsishim.so'
MTX = '/usr/sbin/mtx'
TAPEINFO = '/usr/sbin/tapeinfo'
MIB = 1024 * 1024


def create(root, *, slots, drives, tapes, capacity, import_export=0):
    """Make the library in root (missing or empty directory); returns the Library.

    capacity: bytes per cartridge (whole MiB, the backend's unit)."""
    root = os.path.abspath(root)
    if is_library(root):
        raise LibraryError(
            f'{root} already holds a virtual library: remove it first '
            f'(python -m sim.tapelib cleanup {root}; rm -r {root})'
        )
    if os.path.exists(root) and (not os.path.isdir(root) or os.listdir(root)):
        raise LibraryError(f'{root} exists and is not an empty directory')
    if capacity < cartridge.MIN_CAPACITY_MB * MIB:
        raise LibraryError(f'a cartridge needs at least {cartridge.MIN_CAPACITY_MB}M (LTFS fails every write below)')
    library = new_library(
        root,
        slots=slots,
        drives=drives,
        tapes=tapes,
        capacity=capacity,
        import_export=import_export,
        drive_device=lambda serial: str(cartridge.drive_file(Path(root) / 'drives', serial)),
    )
    for directory in ('dev', 'drives', 'tapes', *mountpoints(library)):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    with open(library.changer_device, 'w'):
        pass  # the changer's device node: mtx opens it, the shim answers for it
    for tape in library.tapes.values():
        cartridge.new_cartridge(tapes_folder(root), tape.id, capacity_mb=capacity // MIB)
    with open(os.path.join(root, LOCK_FILE), 'a'):
        pass
    save(library)
    return library


def tapes_folder(root):
    return Path(root) / 'tapes'


def scsi_environment(library):
    """What mtx and tapeinfo need in their environment to reach the library through the shim."""
    devices = [f'{library.changer_device}=changer'] + [
        f'{drive.device}=drive:{drive.index}' for drive in library.drives
    ]
    return {
        'LD_PRELOAD': str(SHIM),
        'TAPELIB_SCSI_DEVICES': ','.join(devices),
        'TAPELIB_SCSI_PYTHON': os.path.realpath(sys.executable),
        'PYTHONPATH': str(PROJECT_ROOT),
    }


def scsi_command(library, program):
    """`env NAME=VALUE ... PROGRAM`: one command line a config file can hold."""
    settings = [f'{name}={value}' for name, value in scsi_environment(library).items()]
    return shlex.join(['env', *settings, program])


def mountpoints(library):
    """One mount point per drive: mnt for the first, mnt1, mnt2... for the others (side by side, never
    one inside another; a one-drive library keeps plain mnt)."""
    return [os.path.join(library.root, 'mnt' + (str(drive.index) if drive.index else '')) for drive in library.drives]


def config_lines(library):
    """The pytarchive.conf lines that point pytarchive at this library, every drive listed."""
    drives = library.drives

    def listed(values):
        return ', '.join(str(value) for value in values)

    lines = [
        '[General]',
        f'tape_max_size = {library.capacity}',
        '',
        '[Device]',
        f'library = {library.changer_device}',
        f'drive_serial = {listed(drive.serial for drive in drives)}',
        f'drive_index = {listed(drive.index for drive in drives)}',
        f'drive_device = {listed(drive.device for drive in drives)}',
        f'mountpoint = {listed(mountpoints(library))}',
        f'mtx = {scsi_command(library, MTX)}',
        f'tapeinfo = {scsi_command(library, TAPEINFO)}',
        f'mkltfs = {LTFS_BIN / "mkltfs"}',
        f'ltfs = {LTFS_BIN / "ltfs"}',
        f'ltfsck = {LTFS_BIN / "ltfsck"}',
        f'umount = {shutil.which("umount") or "umount"}',
    ]
    return lines
