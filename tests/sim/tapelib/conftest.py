"""Fixtures and helpers for the virtual tape library's tests: a library made by `init` in the
test's own directory, its stand-ins run as real processes, as pytarchive runs them. Formatting or
mounting a tape needs root (loop-mounted ext4 images); listing and moving tapes does not."""

import os
import select
import subprocess
import sys

import pytest

PROJECT = os.path.abspath(os.path.join(os.path.dirname(__file__), *['..'] * 3))
PAD = 36  # volume tags are space-padded to 36 characters


def admin(*arguments, check=True):
    result = subprocess.run(
        [sys.executable, '-m', 'sim.tapelib', *map(str, arguments)], cwd=PROJECT, capture_output=True, text=True
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


class Library:
    """A library made by `init`, and shortcuts to run its stand-ins."""

    def __init__(self, root, config):
        self.root = str(root)
        self.config = config
        self.changer = f'{self.root}/dev/sch0'
        self.drive = f'{self.root}/dev/nst0'
        self.serial = '10WT000000'
        self.mnt = f'{self.root}/mnt'

    def run(self, command, *arguments, env=None):
        return subprocess.run(
            [f'{self.root}/bin/{command}', *map(str, arguments)], capture_output=True, text=True, env=env, timeout=60
        )

    def mtx(self, *arguments):
        return self.run('mtx', '-f', self.changer, *arguments)

    def status(self):
        result = self.mtx('status')
        assert result.returncode == 0, result.stderr
        return result.stdout

    def load_and_format(self, slot=1):
        assert self.mtx('load', slot).returncode == 0
        result = self.run('mkltfs', '-d', self.drive)
        assert result.returncode == 0, result.stderr

    def mount(self):
        result = self.run('ltfs', '-o', f'devname={self.serial}', self.mnt)
        assert result.returncode == 0, result.stderr
        return result

    def unmount_and_wait(self):
        """What pytarchive must do: umount, then wait for the ltfs process to exit."""
        pids = ltfs_processes(self.mnt)
        assert len(pids) == 1
        subprocess.run(['umount', self.mnt], check=True)
        wait_for_exit(pids[0])


@pytest.fixture
def make_library(tmp_path):
    made = []

    def make(
        tapes='TPN001L9,TPN002L9,-,CLN001L1', slots=6, import_export=1, capacity='16M', drives=1, write_seconds=0.2
    ):
        root = tmp_path / f'library{len(made)}'
        result = admin(
            'init',
            root,
            '--slots',
            slots,
            '--drives',
            drives,
            '--tapes',
            tapes,
            '--capacity',
            capacity,
            '--import-export',
            import_export,
            '--index-write-seconds',
            write_seconds,
        )
        made.append(Library(root, result.stdout))
        return made[-1]

    yield make
    for library in made:
        admin('cleanup', library.root, check=False)
    left = [line.split()[1] for line in open('/proc/self/mounts') if str(tmp_path) in line]
    for mountpoint in reversed(left):
        subprocess.run(['umount', '-l', mountpoint])
    assert not left, f'mounts left behind: {left}'


@pytest.fixture
def library(make_library):
    return make_library()


def ltfs_processes(mountpoint):
    """The ltfs serving mountpoint, found as on a real host: named ltfs, the mount point among its arguments."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as file:
                arguments = file.read().split(b'\0')
        except OSError:
            continue
        if os.path.basename(arguments[0]) == b'ltfs' and os.fsencode(mountpoint) in arguments:
            pids.append(int(entry))
    return pids


def wait_for_exit(pid, timeout=15):
    """A pidfd turns readable when the process ends, reaped or not (orphans may stay zombies)."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([descriptor], [], [], timeout)[0], f'ltfs {pid} still running'
    finally:
        os.close(descriptor)


def tag(barcode):
    return barcode.ljust(PAD)


def sense_block(key, asc, ascq):
    return ''.join(
        f'mtx: Request Sense: {line}\n'
        for line in [
            'Long Report=yes',
            'Valid Residual=no',
            'Error Code=70 (Current)',
            f'Sense Key={key}',
            'FileMark=no',
            'EOM=no',
            'ILI=no',
            f'Additional Sense Code = {asc}',
            f'Additional Sense Qualifier = {ascq}',
            'BPV=no',
            'Error in CDB=no',
            'SKSV=no',
        ]
    )
