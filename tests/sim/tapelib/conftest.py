"""Fixtures and helpers for the virtual tape library's tests: a library made by `python -m sim.tapelib init`
in the test's own directory, driven through the commands init prints (the real mtx and tapeinfo through the
SCSI shim, the real mkltfs, ltfs and ltfsck), as pytarchive runs them. Mounting needs root (FUSE); loading,
formatting and everything the robot does need not."""

import configparser
import os
import select
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = os.path.abspath(os.path.join(os.path.dirname(__file__), *['..'] * 3))
PAD = 36  # volume tags are space-padded to 36 characters
LTFS_TIMEOUT = 120  # every LTFS command under a timeout: on a bad drive file the backend spins for ever
MIB = 1024 * 1024


def admin(*arguments, check=True):
    result = subprocess.run(
        [sys.executable, '-m', 'sim.tapelib', *map(str, arguments)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


class Library:
    """A library made by `init`, and shortcuts to run the commands of the config lines it printed."""

    def __init__(self, root, output):
        self.root = str(root)
        self.output = output
        self.config = configparser.ConfigParser(interpolation=None)
        self.config.read_string(output)
        device = self.config['Device']
        self.changer = device['library']
        # The first drive's (the config lists one item per drive).
        self.drive = device['drive_device'].split(',')[0].strip()
        self.serial = device['drive_serial'].split(',')[0].strip()
        self.mnt = device['mountpoint'].split(',')[0].strip()

    def command(self, name):
        """The config line's command as an argument list: `env LD_PRELOAD=... /usr/sbin/mtx` or a path."""
        return shlex.split(self.config['Device'][name])

    def run(self, name, *arguments):
        return subprocess.run(
            [*self.command(name), *map(str, arguments)], capture_output=True, text=True, timeout=LTFS_TIMEOUT
        )

    def tape(self, barcode):
        """The cartridge's folder: its records and filedebug_tc_conf.xml."""
        return Path(self.root) / 'tapes' / barcode

    # --- the robot, through the real mtx --------------------------------------------------------

    def mtx(self, *arguments):
        return self.run('mtx', '-f', self.changer, *arguments)

    def status(self):
        result = self.mtx('status')
        assert result.returncode == 0, result.stderr
        return result.stdout

    def load(self, slot=1):
        result = self.mtx('load', slot, 0)
        assert result.returncode == 0, result.stderr

    # --- the real LTFS --------------------------------------------------------------------------

    def format(self, serial='TPN001', name='TPN001L9'):
        result = self.run('mkltfs', '-d', self.drive, '-s', serial, '-n', name)
        assert result.returncode == 0 and 'LTFS15024I' in result.stderr, result.stderr  # formatted successfully
        return result

    def load_and_format(self, slot=1, serial='TPN001', name='TPN001L9'):
        self.load(slot)
        return self.format(serial, name)

    def try_mount(self, *options):
        """Run ltfs; it detaches, and may exit 0 with nothing mounted: the mount table tells."""
        return self.run('ltfs', '-o', ','.join([f'devname={self.drive}', *options]), self.mnt)

    def mount(self, *options):
        result = self.try_mount(*options)
        assert self.mounted(), result.stderr
        return result

    def mounted(self):
        return self.mnt in mountpoints()

    def unmount(self):
        """What pytarchive must do: umount, then wait for the ltfs process to write its index and exit."""
        pids = ltfs_processes(self.mnt)
        assert len(pids) == 1, pids
        subprocess.run(['umount', self.mnt], check=True, timeout=30)
        wait_for_exit(pids[0])


@pytest.fixture
def make_library(tmp_path):
    made = []

    def make(
        tapes='TPN001L9,TPN002L9,-,CLN001L1',
        slots=6,
        import_export=1,
        capacity='160M',
        drives=1,
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
        )
        made.append(Library(root, result.stdout))
        return made[-1]

    yield make
    cleanups = [admin('cleanup', library.root, check=False) for library in made]
    left = [mountpoint for mountpoint in mountpoints() if mountpoint.startswith(str(tmp_path))]
    for mountpoint in reversed(left):
        subprocess.run(['umount', '-l', mountpoint], timeout=30)
    assert not left, f'mounts left behind by cleanup: {left}'
    assert all(cleanup.returncode == 0 for cleanup in cleanups), [cleanup.stderr for cleanup in cleanups]


@pytest.fixture
def library(make_library):
    return make_library()


def mountpoints():
    with open('/proc/self/mounts') as mounts:
        return [line.split()[1].replace('\\040', ' ') for line in mounts]


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


def wait_for_exit(pid, timeout=30):
    """A pidfd turns readable when the process ends, reaped or not (a detached ltfs may stay a zombie)."""
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
    """The 12 lines the real mtx prints on stderr for a command that failed with this sense."""
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
