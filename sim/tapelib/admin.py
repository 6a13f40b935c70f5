"""What the admin CLI does to a library besides creating it: faults, a report, cleaning up.

Faults are real ones: an mtx error is sense data the changer answers; a full tape is a small
cartridge; a flipped byte is one byte changed in a data record on the cartridge; a damaged
cartridge has lost its LTFS labels, so the real ltfs refuses to mount it."""

import os
import signal
import subprocess
import time
from pathlib import Path

from . import cartridge, index
from .builder import MIB, tapes_folder
from .model import LibraryError, MtxFault
from .scsi.model import processes_holding
from .store import open_library

STOP_SECONDS = 30.0
LABELS = ('0_2_R', '1_2_R')  # the LTFS label record of each partition, after the VOL1 label and a filemark


def add_mtx_fault(root, sense_key, asc, ascq, count):
    with open_library(root) as library:
        library.mtx_faults.append(MtxFault(sense_key, asc, ascq, count))


def _cartridge(root, name):
    with open_library(root) as library:
        tape = library.tape_named(name)
    return tape, tapes_folder(root) / tape.id


def set_capacity(root, name, capacity):
    """Make the cartridge this small (whole MiB, at least 160): the backend reads it at every load."""
    tape, folder = _cartridge(root, name)
    try:
        cartridge.configure(folder, capacity // MIB)
    except ValueError as error:
        raise LibraryError(str(error)) from None
    return tape


def flip_byte(root, name, path):
    """Flip one byte of the file's data on the cartridge, where its newest index says it lies."""
    tape, folder = _cartridge(root, name)
    try:
        return tape, index.flip_byte(folder, path)
    except index.IndexReadError as error:
        raise LibraryError(f'{tape.label}: {error}') from None


def damaged_folder(root, tape):
    return Path(root) / 'damaged' / tape.id


def damage(root, name):
    """Take the cartridge's LTFS labels away (kept aside for `fault clear`): ltfs cannot read the volume."""
    tape, folder = _cartridge(root, name)
    if not cartridge.formatted(folder):
        raise LibraryError(f'{tape.label} is not formatted: nothing to damage')
    aside = damaged_folder(root, tape)
    aside.mkdir(parents=True, exist_ok=True)
    for label in LABELS:
        if (folder / label).exists():
            os.replace(folder / label, aside / label)
    return tape


def clear_faults(root):
    """No pending mtx errors, and damaged cartridges made whole again."""
    with open_library(root) as library:
        library.mtx_faults.clear()
        tapes = list(library.tapes.values())
    for tape in tapes:
        aside = damaged_folder(root, tape)
        if aside.is_dir():
            for record in aside.iterdir():
                os.replace(record, tapes_folder(root) / tape.id / record.name)
            aside.rmdir()


def move_by_hand(root, name, slot):
    with open_library(root) as library:
        library.move_by_hand(library.tape_named(name), slot)


# --- processes of the library -----------------------------------------------------------------


def ltfs_of(library):
    """{pid: drive index} of the processes holding a drive file of the library (ltfs, mkltfs, ltfsck)."""
    return {pid: drive.index for drive in library.drives for pid in processes_holding(drive.device)}


def mounts(root):
    """(mount point, drive file) of the library's drives in the mount table (`ltfs:DRIVEFILE MOUNTPOINT fuse ...`)."""
    drives = str(Path(root) / 'drives') + os.sep
    found = []
    with open('/proc/self/mounts') as table:
        for line in table:
            source, mountpoint = line.split()[:2]
            if source.startswith('ltfs:' + drives):
                found.append((mountpoint.replace('\\040', ' '), source[len('ltfs:') :].replace('\\040', ' ')))
    return found


def stale_mounts(root):
    """Mount points of the library's drives in the mount table."""
    return [mountpoint for mountpoint, _ in mounts(root)]


def cleanup(root):
    """End every ltfs of the library and undo its mounts; returns what was done, one line each.

    Once its mount is undone, ltfs writes its index and ends by itself: it is waited for, not
    signalled, since a signal kills it halfway (FUSE's handlers are gone after umount; SIGTERM's
    default ends the process) and leaves the volume to ltfsck. So are the other processes holding
    a drive (mkltfs, ltfsck, an ltfs still starting). An ltfs whose mount stays (umount failed:
    busy) is asked to end with SIGTERM, which makes it unmount and write its index. Whatever
    still runs after STOP_SECONDS is killed."""
    done = []
    reported, seen = set(), set()
    deadline = time.monotonic() + STOP_SECONDS
    while True:
        busy = set()
        for mountpoint, drive in mounts(root):
            umount = subprocess.run(['umount', mountpoint], capture_output=True, text=True)
            if umount.returncode == 0:
                done.append(f'unmounted {mountpoint}')
            else:
                busy.add(os.path.realpath(drive))
                if mountpoint not in reported:
                    reported.add(mountpoint)
                    done.append(f'cannot unmount {mountpoint}: {umount.stderr.strip()}')
        with open_library(root) as library:
            running = ltfs_of(library)
            devices = {drive.index: os.path.realpath(drive.device) for drive in library.drives}
        for pid, drive in running.items():
            if pid in seen:
                continue
            seen.add(pid)
            if devices[drive] in busy:
                _signal(pid, signal.SIGTERM)
                done.append(f'drive {drive}: asked pid {pid} to end (it unmounts and writes its index)')
            else:
                done.append(f'drive {drive}: waiting for pid {pid} to end (ltfs writes its index after umount)')
        if not running or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    for pid, drive in running.items():
        _signal(pid, signal.SIGKILL)
        done.append(f'drive {drive}: pid {pid} did not end; killed it')
    for mountpoint in stale_mounts(root):
        subprocess.run(['umount', '-l', mountpoint], capture_output=True)
        done.append(f'unmounted {mountpoint} (lazily)')
    return done


def _signal(pid, number):
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def describe(library):
    """A plain report of the library's state, for people."""
    lines = [
        f'library {library.root}: {len(library.slots)} slots '
        f'({library.import_export_count} import/export), {len(library.drives)} drives'
    ]
    holders = ltfs_of(library)
    for drive in library.drives:
        tape = library.tapes[drive.tape].label if drive.tape else 'empty'
        line = f'  drive {drive.index} ({drive.serial}, {drive.device}): {tape}'
        if drive.tape:
            line += f' from slot {drive.source_slot}'
        held = [str(pid) for pid, index in holders.items() if index == drive.index]
        if held:
            line += f'; held by pid {", ".join(held)}'
        lines.append(line)
    for slot in library.slots:
        kind = ' import/export' if slot.import_export else ''
        lines.append(f'  slot {slot.number}{kind}: {library.tapes[slot.tape].label if slot.tape else "empty"}')
    for tape in library.tapes.values():
        folder = tapes_folder(library.root) / tape.id
        state = 'formatted' if cartridge.formatted(folder) else 'not formatted'
        if tape.cleaning:
            state = 'cleaning cartridge'
        if damaged_folder(library.root, tape).is_dir():
            state += ', fault: labels taken away (damaged)'
        lines.append(f'  tape {tape.label}: {state}, {cartridge.capacity_mb(folder)} MiB, {folder}')
    for fault in library.mtx_faults:
        lines.append(
            f'  fault: next {fault.remaining} mtx move(s) fail with sense '
            f'{fault.sense_key:X}/{fault.asc:02X}/{fault.ascq:02X}'
        )
    return lines
