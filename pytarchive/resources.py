"""What the tasks of one drive work with: the changer (shared by every drive), that drive and its
mount point, the database, the config. `for_drives` makes one DriveResources per [Device] drive.

`load` and `release` are the only ways tasks move tapes, and both start from the library's state
as mtx reports it now: a task run again after a crash finds the tape already loaded (and goes on),
or another tape left behind (and puts it back home first). The slot a tape is loaded from is
recorded before the move, and the tape goes back there: mtx's report of a drive's source slot is
rewritten whenever that slot is occupied.

A volume that will not mount because data lies beyond its last index (an ltfs that died while
writing: a crash, a kill, a power cut) is checked with ltfsck, which rolls it back to that index.
This is safe for pytarchive's tapes, so it runs by itself unless [Device] ltfsck_recovery = no:
every archive ends with an unmount that writes the index before the read-back that marks it
archived, so a rollback drops only the copy that was cut short, which is copied again from the
source (never deleted) and verified whole. See the README for the reasoning.
"""

import contextlib
import logging
import threading
from typing import Any, Dict, Iterator, List, Optional

from common.errors import ToolError
from pytarchive.config import Config, DriveConfig
from pytarchive.state.db import Database, DatabaseError
from pytarchive.library.changer import Changer
from pytarchive.library.drive import Drive
from pytarchive.library.errors import IndexBehind
from pytarchive.state import tapes
from pytarchive.taskqueue.consumer import describe_failure

log = logging.getLogger(__name__)


def for_drives(config: Config, db: Optional[Database]) -> List['DriveResources']:
    """One DriveResources per configured drive, all moving tapes through one Changer (whose lock
    keeps two mtx runs from overlapping)."""
    changer = Changer(list(config.device.mtx), config.device.library)
    return [DriveResources(config, db, drive, changer) for drive in config.device.drives]


class DriveResources:
    def __init__(
        self, config: Config, db: Database, drive: Optional[DriveConfig] = None, changer: Optional[Changer] = None
    ):
        """drive: which of [Device]'s drives (the first when not given); changer: the one shared by all."""
        device = config.device
        drive = drive or device.drives[0]
        self.config = config
        self.db = db
        self.index = drive.index
        self.mountpoint = drive.mountpoint  # where the tape in this drive is mounted: tasks' paths start here
        self.changer = changer or Changer(list(device.mtx), device.library)
        self.drive = Drive(
            mkltfs=list(device.mkltfs),
            ltfs=list(device.ltfs),
            tapeinfo=list(device.tapeinfo),
            umount=list(device.umount),
            ltfsck=list(device.ltfsck),
            device=drive.device,
            serial=drive.serial,
            mountpoint=drive.mountpoint,
        )
        # What the summary shows for the drive, kept here rather than asked of the library mid-task.
        self.holding: Optional[str] = None  # barcode of the tape this worker loaded
        self.mounted: Optional[str] = None  # 'read-write' | 'read-only'
        self.end_explore = threading.Event()  # set by `pytarchive explore --stop`
        self.lent_to: Optional[int] = None  # the task running on another drive that reads a tape here
        # What ltfsck did to the volume of the current task, for its result; None when it did not run.
        self.recovery: Optional[str] = None

    def load(self, barcode: str) -> Optional[int]:
        """Get this tape into the drive (unmounting and unloading any other first); return its home slot."""
        self.drive.check_serial()
        self.drive.unmount()  # a mount left by a run cut short: start from an unmounted tape
        held = self.changer.status().drive(self.index)
        if held is not None and held.full and (held.barcode or '').upper() != barcode.upper():
            log.info('drive %d holds %s, putting it back first', self.index, held.barcode or 'a tape without barcode')
            self.release()
        # The home slot is recorded before the move: a crash after it keeps the record.
        slot = self.changer.load(
            barcode, self.index, before_move=lambda tape, home: tapes.record_home(self.db, tape, home)
        )
        self.holding = barcode
        self.recovery = None
        return slot

    def release(self) -> None:
        """Leave the drive empty and unmounted: a tape is never left in the drive between tasks."""
        self.drive.unmount()  # no-op when nothing is mounted; waits for ltfs to write the index
        self.mounted = None
        self.changer.unload(self.index, home_of=self._home_of)  # no-op when the drive is empty
        self.holding = None

    def _home_of(self, barcode: str) -> Optional[int]:
        try:
            return tapes.home_slot(self.db, barcode)
        except DatabaseError as exc:  # the drive is emptied all the same, to mtx's report
            log.error('the home slot of %s is unknown (%s)', barcode, exc)
            return None

    def mount(self, read_only: bool = False) -> None:
        """Mount the tape in the drive; a volume whose index is behind its data is checked with ltfsck
        first (unless [Device] ltfsck_recovery = no), and what ltfsck did is kept for the task's result."""
        try:
            self.drive.mount(read_only=read_only)
        except IndexBehind as behind:
            if not self.config.device.ltfsck_recovery:
                raise ToolError(
                    f'{behind}: the volume needs ltfsck, which rolls it back to its last index (data written '
                    f'after it is dropped); [Device] ltfsck_recovery = no leaves that to you: run '
                    f'"{" ".join(self.drive.ltfsck)} {self.drive.device}" with the tape in the drive, then requeue'
                ) from None
            log.warning('%s will not mount, its index is behind its data: %s; running ltfsck', self.holding, behind)
            said = self.drive.check_volume(deep=behind.deep)
            self.recovery = (
                f'{self.holding} did not mount after an interrupted write ({_last_error(str(behind))}); '
                f'ltfsck rolled it back to its last index ({said})'
            )
            log.warning('%s', self.recovery)
            self.drive.mount(read_only=read_only)
        self.mounted = 'read-only' if read_only else 'read-write'

    def drive_state(self) -> Dict[str, Any]:
        return {
            'index': self.index,
            'serial': self.drive.serial,
            'tape': self.holding,
            'mounted': self.mounted,
            'lent_to': self.lent_to,
        }

    @contextlib.contextmanager
    def tape_loaded(self, barcode: str) -> Iterator[Optional[int]]:
        """Load the tape for the block and release the drive after it, however the block ends."""
        slot = self.load(barcode)
        try:
            yield slot
        except BaseException as failure:
            try:
                self.release()
            except Exception as release_failure:  # noqa: BLE001 - reported together with the first failure
                raise ToolError(
                    f'{describe_failure(failure)}; then releasing the drive failed too: '
                    f'{describe_failure(release_failure)}'
                ) from failure
            raise
        self.release()

    def remount_read_only(self) -> None:
        """Unmount (LTFS writes its index and flushes to tape) and mount again read-only: what is read
        afterwards comes from the tape, not from what the writes left in memory."""
        self.drive.unmount()
        self.mounted = None
        self.mount(read_only=True)

    @contextlib.contextmanager
    def tape_mounted(self, barcode: str, read_only: bool = False) -> Iterator[Optional[int]]:
        """tape_loaded(), with the LTFS volume mounted for the block (unmounted when the drive is released)."""
        with self.tape_loaded(barcode) as slot:
            self.mount(read_only=read_only)
            yield slot


def _last_error(message: str) -> str:
    """The LTFS line that says what to do (LTFS11220E ... Run ltfsck.) out of a mount failure's message."""
    found = [part.strip() for part in message.split(';') if 'LTFS11220E' in part or 'LTFS17146E' in part]
    return found[0] if found else message
