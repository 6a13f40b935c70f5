"""The tape library's robot, driven through mtx (`mtx -f DEVICE status|load|unload|transfer`).

Every move starts from a fresh `mtx status` and is checked against another one afterwards; after a
failure the status is read again and attached to the error (MtxError.status_after), so the caller
records what the library says rather than what was intended. Tapes go back to their home slot (the
slot the caller loaded them from; what mtx reports is only a hint, see unload), never to "some empty
slot", and cleaning tapes are never loaded. mtx's error lines carry no program prefix (only its
Request Sense lines start with "mtx: "); a prefix is removed where an older mtx prints one.
"""

import functools
import logging
import re
import threading
from typing import Callable, Optional, Sequence, Union

from .commands import CommandNotRun, Finished, run_command
from .errors import LibraryError, MtxError
from .status import DriveSlot, LibraryStatus, Slot, is_cleaning_tape, parse_status

__all__ = ['Changer', 'parse_status', 'parse_mtx_failure']

log = logging.getLogger(__name__)

# A move in a large library can take minutes (robot travel, a drive unthreading the tape).
DEFAULT_TIMEOUT = 900.0

# "mtx: Request Sense: Sense Key=Illegal Request", "mtx: Request Sense: Additional Sense Code = 53"
_SENSE_LINE = re.compile(r'(?:\S*: )?Request Sense: (?P<field>[^=]+?) ?= ?(?P<value>.*)')
# The real mtx 1.3.12 prints its error lines bare ("Drive 0 Full (Storage Element 3 loaded)"); other
# builds prefix them with their name ("mtx: ..."), which is removed.
_PROGRAM_PREFIX = re.compile(r'\S*mtx: ')


def parse_mtx_failure(finished: Finished) -> tuple:
    """(message, sense_key, asc, ascq) from a failed mtx run; sense fields None when mtx printed none."""
    sense = {}
    messages = []
    for raw in finished.stderr.split('\n'):
        line = raw.strip()
        if not line:
            continue
        match = _SENSE_LINE.fullmatch(line)
        if match:
            sense[match['field'].strip()] = match['value'].strip()
        else:
            messages.append(_PROGRAM_PREFIX.sub('', line, count=1))
    if not messages:
        last_output = [line.strip() for line in finished.stdout.split('\n') if line.strip()]
        messages = last_output[-1:] or [f'exit status {finished.returncode}']
    asc = sense.get('Additional Sense Code')
    ascq = sense.get('Additional Sense Qualifier')
    return ('; '.join(messages), sense.get('Sense Key'), asc.upper() if asc else None, ascq.upper() if ascq else None)


def _one_at_a_time(method: Callable) -> Callable:
    """A changer does one thing at a time: with several drives, one task's move (its status before,
    the move, the status after) never interleaves with another's."""

    @functools.wraps(method)
    def locked(self: 'Changer', *args, **kwargs):  # noqa: ANN202 - the method's own signature
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class Changer:
    """One media changer, shared by the tasks of every drive. `mtx` is the command as a list (e.g. ['/usr/sbin/mtx']), `device` its -f argument."""

    def __init__(self, mtx: Union[str, Sequence[str]], device: str, timeout: float = DEFAULT_TIMEOUT):
        self.mtx = [mtx] if isinstance(mtx, str) else list(mtx)
        self.device = device
        self.timeout = timeout
        # The most recent status read; None when the last read failed (the state is then unknown).
        self.last_status: Optional[LibraryStatus] = None
        self._lock = threading.RLock()  # reentrant: a move reads the status under the same lock

    @_one_at_a_time
    def status(self) -> LibraryStatus:
        """Read and parse `mtx status`. Raises MtxError or MtxParseError."""
        self.last_status = None
        finished = self._run('status')
        self.last_status = parse_status(finished.stdout)
        return self.last_status

    @_one_at_a_time
    def load(
        self, barcode: str, drive: int = 0, before_move: Optional[Callable[[str, int], None]] = None
    ) -> Optional[int]:
        """Load the tape with this barcode into `drive`; return its home slot.

        Loading a tape that is already in that drive does nothing (so a task run again after a crash
        gives the same result). Refuses cleaning tapes, a drive holding another tape, an unknown or
        duplicated barcode, and a tape that sits in another drive. before_move(barcode, slot) is called
        just before the robot moves: the caller records where the tape came from.
        """
        barcode = barcode.strip()
        if not barcode:
            raise MtxError('no barcode given: pytarchive loads tapes only by their barcode')
        if is_cleaning_tape(barcode):
            raise MtxError(f'{barcode} is a cleaning tape; pytarchive never loads cleaning tapes for data')
        status = self.status()
        target = self._drive(status, drive)
        if target.full:
            if target.barcode and target.barcode.upper() == barcode.upper():
                log.info('%s is already in drive %d', barcode, drive)
                return target.source_slot
            raise MtxError(f'cannot load {barcode}: drive {drive} already holds {_describe(target)}; unload it first')
        slot = self._slot_holding(status, barcode)
        if before_move is not None:
            before_move(barcode, slot.number)
        self._move('load', slot.number, drive)
        after = self.status()
        loaded = after.drive(drive)
        if not (loaded and loaded.full and (loaded.barcode or '').upper() in ('', barcode.upper())):
            raise MtxError(
                f'mtx reported loading {barcode} from slot {slot.number} but drive {drive} now holds '
                f'{_describe(loaded) if loaded and loaded.full else "nothing"}',
                command=self._argv('load', slot.number, drive),
                mtx_reported=True,
            )
        log.info('loaded %s from slot %d into drive %d', barcode, slot.number, drive)
        return slot.number

    @_one_at_a_time
    def unload(self, drive: int = 0, home_of: Optional[Callable[[str], Optional[int]]] = None) -> Optional[int]:
        """Put the tape in `drive` back into its home slot and return that slot; None if the drive was empty.

        home_of(barcode): the slot the caller loaded that tape from, or None. mtx's own report is only
        a hint: the real mtx names the tape's source slot only while that slot is empty, and otherwise
        the first empty slot, so a tape would go to a slot that was never its home. Without a recorded
        home, mtx's report is used, with a warning. Refuses when the home slot is occupied: the
        operator decides then, rather than pytarchive filling some other slot.
        """
        status = self.status()
        target = self._drive(status, drive)
        if not target.full:
            log.info('drive %d is already empty', drive)
            return None
        recorded = home_of(target.barcode) if home_of is not None and target.barcode else None
        home = target.source_slot if recorded is None else recorded
        name = target.barcode or 'the tape'
        if recorded is None and home is not None:
            log.warning(
                'drive %d: no record of where %s was loaded from; mtx reports slot %d (mtx names the first '
                'empty slot when the true one is occupied)',
                drive,
                name,
                home,
            )
        elif recorded is not None and target.source_slot != recorded:
            reported = f'slot {target.source_slot}' if target.source_slot is not None else 'an unknown slot'
            log.warning(
                'drive %d: mtx reports %s came from %s, but it was loaded from slot %d: unloading it there',
                drive,
                name,
                reported,
                recorded,
            )
        home_slot = status.slot(home) if home is not None else None
        if home_slot is None:
            where = (
                'neither pytarchive nor the library knows its home slot'
                if home is None
                else f'its home slot {home} does not exist in this library'
            )
            raise MtxError(
                f'cannot unload drive {drive} ({_describe(target)}): {where}; unload it by hand with '
                f'"{" ".join(self._argv("unload", "SLOT", drive))}" into a slot you choose'
            )
        if home_slot.full:
            raise MtxError(
                f'cannot unload drive {drive} ({target.barcode or "a tape without barcode"}): its home slot '
                f'{home} is occupied by {_describe(home_slot)} (moved there by hand?); move that tape '
                f'away first, or unload it by hand with "{" ".join(self._argv("unload", "SLOT", drive))}"'
            )
        self._move('unload', home, drive)
        after = self.status()
        emptied, filled = after.drive(drive), after.slot(home)
        if emptied is None or emptied.full or filled is None or not filled.full:
            raise MtxError(
                f'mtx reported unloading drive {drive} into slot {home} but the library now '
                f'shows the drive {"full" if emptied is None or emptied.full else "empty"} and the '
                f'slot {"full" if filled is not None and filled.full else "empty"}',
                command=self._argv('unload', home, drive),
                mtx_reported=True,
            )
        log.info('unloaded drive %d into its home slot %d', drive, home)
        return home

    @_one_at_a_time
    def transfer(self, source: int, destination: int) -> None:
        """Move a tape between two slots (e.g. to or from an import/export slot)."""
        status = self.status()
        src, dst = status.slot(source), status.slot(destination)
        if src is None or dst is None:
            missing = source if src is None else destination
            raise MtxError(
                f'cannot transfer {source} -> {destination}: the library has no slot {missing} '
                f'(slots 1-{len(status.slots)})'
            )
        if not src.full:
            raise MtxError(f'cannot transfer {source} -> {destination}: slot {source} is empty')
        if dst.full:
            raise MtxError(
                f'cannot transfer {source} -> {destination}: slot {destination} already holds {_describe(dst)}'
            )
        self._move('transfer', source, destination)
        after = self.status()
        moved_to, moved_from = after.slot(destination), after.slot(source)
        if not (moved_to and moved_to.full and moved_from and not moved_from.full):
            raise MtxError(
                f'mtx reported moving slot {source} to {destination} but the library does not show it',
                command=self._argv('transfer', source, destination),
                mtx_reported=True,
            )
        log.info('moved %s from slot %d to slot %d', _describe(src), source, destination)

    # -- helpers -----------------------------------------------------------------------------------

    def _drive(self, status: LibraryStatus, index: int) -> DriveSlot:
        drive = status.drive(index)
        if drive is None:
            raise MtxError(
                f'the library at {self.device} has no drive {index} (drives 0-{len(status.drives) - 1})'
                if status.drives
                else f'the library at {self.device} reports no drives'
            )
        return drive

    def _slot_holding(self, status: LibraryStatus, barcode: str) -> Slot:
        holders = status.holders(barcode)
        if not holders:
            raise MtxError(
                f'no tape with barcode {barcode} in the library at {self.device} '
                f'({len(status.slots)} slots, {len(status.drives)} drives)'
            )
        if len(holders) > 1:
            raise MtxError(
                f'barcode {barcode} appears {len(holders)} times ({", ".join(map(_where, holders))}); '
                f'refusing to guess which tape to use'
            )
        holder = holders[0]
        if isinstance(holder, DriveSlot):
            raise MtxError(f'{barcode} is in drive {holder.index}; unload it from there first')
        return holder

    def _move(self, *args) -> None:
        """Run a move; on failure read the status again and attach it to the error."""
        try:
            self._run(*args)
        except MtxError as error:
            error.status_after = self._reread_after_failure()
            raise

    def _reread_after_failure(self) -> Optional[LibraryStatus]:
        try:
            return self.status()
        except LibraryError as error:
            log.error('library status unknown after a failed move: %s', error)
            return None

    def _argv(self, *args) -> list:
        return [*self.mtx, '-f', self.device, *map(str, args)]

    def _run(self, *args) -> Finished:
        argv = self._argv(*args)
        try:
            finished = run_command(argv, self.timeout)
        except CommandNotRun as error:
            raise MtxError(str(error), command=argv, mtx_reported=error.timed_out) from None
        if finished.returncode != 0:
            message, sense_key, asc, ascq = parse_mtx_failure(finished)
            raise MtxError(message, command=argv, sense_key=sense_key, asc=asc, ascq=ascq, mtx_reported=True)
        return finished


def _describe(element: Union[DriveSlot, Slot]) -> str:
    """'TPN002L9 (from slot 5)', 'a tape without barcode', for messages."""
    name = element.barcode or 'a tape without barcode'
    if isinstance(element, DriveSlot):
        return (
            f'{name} (from slot {element.source_slot})'
            if element.source_slot is not None
            else f'{name} (home slot unknown)'
        )
    return name


def _where(element: Union[DriveSlot, Slot]) -> str:
    return f'drive {element.index}' if isinstance(element, DriveSlot) else f'slot {element.number}'
