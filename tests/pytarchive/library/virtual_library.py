"""A sim/tapelib library in a directory, with pytarchive's Changer and Drive configured for it:
the helper of the library layer's tests (test_drive, test_mtx). The real mtx, tapeinfo and LTFS run."""

import configparser
import shlex
import subprocess
import sys
from pathlib import Path

from pytarchive.library import Changer, Drive

REPO = Path(__file__).resolve().parents[3]


class VirtualLibrary:
    """A sim/tapelib library in a directory, and pytarchive's Changer and Drive configured for it the
    way pytarchive.conf would be (from the [Device] lines `init` prints)."""

    def __init__(
        self,
        root,
        tapes='TPN001L9,TPN002L9,-,CLN001L1',
        slots=6,
        capacity='256M',
        import_export=1,
    ):
        self.root = str(root)
        printed = self.admin(
            'init',
            self.root,
            '--slots',
            str(slots),
            '--drives',
            '1',
            '--tapes',
            tapes,
            '--capacity',
            capacity,
            '--import-export',
            str(import_export),
        )
        config = configparser.ConfigParser()
        config.read_string(printed)
        self.device = config['Device']
        self.capacity = int(config['General']['tape_max_size'])

    def admin(self, *args):
        result = subprocess.run(
            [sys.executable, '-m', 'sim.tapelib', *args], cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def fault(self, *args):
        self.admin('fault', self.root, *args)

    def changer(self):
        return Changer(shlex.split(self.device['mtx']), self.device['library'], timeout=60)

    def drive(self, serial=None):
        return Drive(
            mkltfs=[self.device['mkltfs']],
            ltfs=[self.device['ltfs']],
            ltfsck=[self.device['ltfsck']],
            tapeinfo=shlex.split(self.device['tapeinfo']),
            umount=[self.device['umount']],
            device=self.device['drive_device'],
            serial=serial or self.device['drive_serial'],
            mountpoint=self.device['mountpoint'],
            timeout=120,
            unmount_timeout=60,
        )

    @property
    def mountpoint(self):
        return self.device['mountpoint']

    def cleanup(self):
        """Stop every ltfs and undo every mount, whatever a failed test left behind."""
        self.admin('cleanup', self.root)
