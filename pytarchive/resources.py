"""What the tasks of one drive work with: the changer, that drive, the database, the config.

`load` and `release` are the only ways tasks move tapes, and both start from the library's state
as mtx reports it now: a task run again after a crash finds the tape already loaded (and goes on),
or another tape left behind (and puts it back home first).
"""

import contextlib
import logging
import threading
from typing import Any, Dict, Iterator, Optional

from common.errors import ToolError
from pytarchive.config import Config
from pytarchive.state.db import Database
from pytarchive.library.changer import Changer
from pytarchive.library.drive import Drive
from pytarchive.library.errors import MtxError
from pytarchive.taskqueue.consumer import describe_failure

log = logging.getLogger(__name__)
REMOVAL_PREVENTED = ('53', '03')  # MEDIUM REMOVAL PREVENTED BY DATA TRANSFER ELEMENT


class DriveResources:
    def __init__(self, config: Config, db: Database):
        device = config.device
        self.config = config
        self.db = db
        self.index = device.drive_index
        self.changer = Changer(list(device.mtx), device.library)
        self.drive = Drive(
            mkltfs=list(device.mkltfs),
            ltfs=list(device.ltfs),
            tapeinfo=list(device.tapeinfo),
            umount=list(device.umount),
            device=device.drive_device,
            serial=device.drive_serial,
            mountpoint=device.mountpoint,
        )
        # What the summary shows for the drive, kept here rather than asked of the library mid-task.
        self.holding: Optional[str] = None  # barcode of the tape this worker loaded
        self.mounted: Optional[str] = None  # 'read-write' | 'read-only'
        self.end_explore = threading.Event()  # set by `pytarchive explore --stop`

    def load(self, barcode: str) -> Optional[int]:
        """Get this tape into the drive (unmounting and unloading any other first); return its home slot."""
        self.drive.check_serial()
        self.drive.unmount()  # a mount left by a run cut short: start from an unmounted tape
        held = self.changer.status().drive(self.index)
        if held is not None and held.full and (held.barcode or '').upper() != barcode.upper():
            log.info('drive %d holds %s, putting it back first', self.index, held.barcode or 'a tape without barcode')
            self.release()
        slot = self.changer.load(barcode, self.index)
        self.holding = barcode
        return slot

    def release(self) -> None:
        """Leave the drive empty and unmounted: a tape is never left in the drive between tasks."""
        self.drive.unmount()  # no-op when nothing is mounted
        self.mounted = None
        try:
            self.changer.unload(self.index)  # no-op when the drive is empty
        except MtxError as refused:
            if (refused.asc, refused.ascq) != REMOVAL_PREVENTED:
                raise
            # An ltfs that died without writing its index leaves the drive preventing removal
            # (a common LTFS failure). Its fix: mount the tape and unmount it cleanly.
            log.warning(
                'drive %d refuses to release the tape (ASC/ASCQ 53/03): mounting and unmounting it '
                'once to write its index, then unloading again',
                self.index,
            )
            self.drive.mount()
            self.drive.unmount()
            self.changer.unload(self.index)
        self.holding = None

    def drive_state(self) -> Dict[str, Any]:
        return {'index': self.index, 'serial': self.drive.serial, 'tape': self.holding, 'mounted': self.mounted}

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
        self.drive.mount(read_only=True)
        self.mounted = 'read-only'

    @contextlib.contextmanager
    def tape_mounted(self, barcode: str, read_only: bool = False) -> Iterator[Optional[int]]:
        """tape_loaded(), with the LTFS volume mounted for the block (unmounted when the drive is released)."""
        with self.tape_loaded(barcode) as slot:
            self.drive.mount(read_only=read_only)
            self.mounted = 'read-only' if read_only else 'read-write'
            yield slot
