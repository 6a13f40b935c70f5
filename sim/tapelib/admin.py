"""What the admin CLI does to a library besides creating it: faults, a report, cleaning up."""

import os
import signal
import time

from . import host, media
from .model import LibraryError, MtxFault
from .store import ltfs_running, open_library

STOP_SECONDS = 30.0


def add_mtx_fault(root, sense_key, asc, ascq, count):
    with open_library(root) as library:
        library.mtx_faults.append(MtxFault(sense_key, asc, ascq, count))


def add_mount_failures(root, count):
    with open_library(root) as library:
        library.mount_failures += count


def set_tape_full(root, name, at):
    """From now on the tape takes at most `at` bytes of data; a mounted tape is limited at once."""
    with open_library(root) as library:
        tape = library.tape_named(name)
        tape.full_at = at
        drive = library.drive_holding(tape)
        if drive is not None and drive.mount is not None:
            media.apply_full_at(drive.mount.private, tape)
        return tape


def clear_faults(root):
    with open_library(root) as library:
        library.mtx_faults.clear()
        library.mount_failures = 0
        for tape in library.tapes.values():
            tape.full_at = None
            tape.flip_on_mount = []
            drive = library.drive_holding(tape)
            if drive is not None and drive.mount is not None:
                media.apply_full_at(drive.mount.private, tape)


def flip_byte_on_next_mount(root, name, relative):
    """Flip one byte of the file when the tape is next mounted: corruption found only by reading back."""
    with open_library(root) as library:
        library.tape_named(name).flip_on_mount.append(relative)


def flip_pending(directory, tape):
    """At mount: apply (and forget) the flip-byte faults waiting for it; files that do not exist stay waiting."""
    waiting = []
    for relative in tape.flip_on_mount:
        if os.path.isfile(media.data_path(directory, relative)):
            _flip(directory, relative)
        else:
            waiting.append(relative)
    tape.flip_on_mount = waiting


def flip_byte(root, name, relative):
    """Flip one byte of a file on the tape (mounted or not); returns (offset, old, new)."""
    with open_library(root) as library:
        tape = library.tape_named(name)
        if not tape.formatted:
            raise LibraryError(f'tape {tape.label} is not formatted: it holds no files')
        drive = library.drive_holding(tape)
        if drive is not None and drive.mount is not None:
            return _flip(drive.mount.private, relative)
        image = media.image_path(root, tape)
        scratch = media.private_mount_dir(root, f'fault-{tape.id}')
        media.attach(image, scratch)
        try:
            return _flip(scratch, relative)
        finally:
            media.detach(image, scratch)


def _flip(directory, relative):
    path = media.data_path(directory, relative)
    if not os.path.isfile(path):
        raise LibraryError(f'no file {relative} on the tape')
    return media.flip_byte(path)


def cleanup(root):
    """End every ltfs of the library and undo its mounts; returns what was done, one line each."""
    done = []
    with open_library(root) as library:
        running = [
            (drive.index, drive.mount.pid)
            for drive in library.drives
            if drive.mount is not None and ltfs_running(library, drive.mount)
        ]
    for index, pid in running:
        os.kill(pid, signal.SIGTERM)
        done.append(f'drive {index}: asked ltfs (pid {pid}) to unmount and exit')
    deadline = time.monotonic() + STOP_SECONDS
    while running and time.monotonic() < deadline:
        with open_library(root) as library:
            running = [
                (drive.index, drive.mount.pid)
                for drive in library.drives
                if drive.mount is not None and ltfs_running(library, drive.mount)
            ]
        time.sleep(0.1)
    with open_library(root) as library:
        for drive in library.drives:
            mount = drive.mount
            if mount is None:
                continue
            if ltfs_running(library, mount):
                os.kill(mount.pid, signal.SIGKILL)
                done.append(f'drive {drive.index}: ltfs (pid {mount.pid}) did not exit; killed it')
            if host.mounted_at(mount.mountpoint, mount.device_numbers):
                host.run(['umount', '-l', mount.mountpoint])
                done.append(f'drive {drive.index}: unmounted {mount.mountpoint}')
            media.detach(media.image_path(root, library.tapes[drive.tape]), mount.private)
            drive.mount = None
        for entry in host.mounts():
            if entry.mountpoint.startswith(os.path.join(library.root, 'run') + os.sep):
                host.run(['umount', '-l', entry.mountpoint])
                done.append(f'unmounted {entry.mountpoint}')
    return done


def describe(library):
    """A plain report of the library's state, for people."""
    lines = [
        f'library {library.root}: {len(library.slots)} slots '
        f'({library.import_export_count} import/export), {len(library.drives)} drives, '
        f'capacity {library.capacity} bytes per tape'
    ]
    for drive in library.drives:
        tape = library.tapes[drive.tape].label if drive.tape else 'empty'
        line = f'  drive {drive.index} ({drive.serial}, {drive.device}): {tape}'
        if drive.tape:
            line += f' from slot {drive.source_slot}'
        if drive.mount:
            state = 'running' if ltfs_running(library, drive.mount) else 'DEAD, mounts left behind'
            line += f'; ltfs pid {drive.mount.pid} ({state}) at {drive.mount.mountpoint}'
        lines.append(line)
    for slot in library.slots:
        kind = ' import/export' if slot.import_export else ''
        lines.append(f'  slot {slot.number}{kind}: {library.tapes[slot.tape].label if slot.tape else "empty"}')
    for tape in library.tapes.values():
        state = (
            f'formatted, volume serial {tape.volume_serial or "-"}, index generation {tape.generation}'
            if tape.formatted
            else 'not formatted'
        )
        if tape.cleaning:
            state = 'cleaning cartridge'
        if tape.full_at is not None:
            state += f', fault: full at {tape.full_at} bytes'
        lines.append(f'  tape {tape.label}: {state}')
    for fault in library.mtx_faults:
        lines.append(
            f'  fault: next {fault.remaining} mtx move(s) fail with sense '
            f'{fault.sense_key:X}/{fault.asc:02X}/{fault.ascq:02X}'
        )
    if library.mount_failures:
        lines.append(f'  fault: next {library.mount_failures} ltfs mount(s) fail')
    return lines
