"""Parse `mtx status` output, exactly as mtx 1.3.x prints it, into frozen dataclasses.

The lines mtx prints (printf formats from mtx.c):

    "  Storage Changer %s:%d Drives, %d Slots ( %d Import/Export )"
    "Data Transfer Element %d:Empty"
    "Data Transfer Element %d:Full (Storage Element %d Loaded)"  or  "...:Full (Unknown Storage Element Loaded)"
        then optionally ":VolumeTag = %s" and ":AlternateVolumeTag = %s"
    "      Storage Element %d:Empty"  /  "      Storage Element %d:Full "  (" IMPORT/EXPORT" after the number)
        then optionally ":VolumeTag=%s" and ":AlternateVolumeTag=%s"

Volume tags are padded with blanks to 36 characters, and a tape may have no tag at all. The library's
state decides where tapes are moved, so nothing is guessed: a line that does not fit, elements out of
order, or fewer elements than the header announced (output cut short) raise MtxParseError naming the
line, and that is the only exception parse_status raises for any text.
"""

import re
from dataclasses import dataclass
from typing import Optional

from .errors import MtxParseError

_NUMBER = '[0-9]{1,6}'  # bounded: int() of thousands of digits raises ValueError in Python 3.11
_HEADER = re.compile(
    rf'\s*Storage Changer (?P<device>.*):(?P<drives>{_NUMBER}) Drives, '
    rf'(?P<slots>{_NUMBER}) Slots \( (?P<import_export>{_NUMBER}) Import/Export \)',
    re.ASCII,
)
_DRIVE = re.compile(
    rf'\s*Data Transfer Element (?P<index>{_NUMBER}):(?:(?P<empty>Empty)|Full \('
    rf'(?:Storage Element (?P<source>{_NUMBER})|(?P<unknown>Unknown Storage Element)) Loaded\)'
    r'(?P<tags>.*))',
    re.ASCII,
)
_SLOT = re.compile(
    rf'\s*Storage Element (?P<number>{_NUMBER})(?P<import_export> IMPORT/EXPORT)?:'
    r'(?:(?P<empty>Empty)|(?P<full>Full) ?)(?P<tags>.*)',
    re.ASCII,
)
# mtx writes "VolumeTag = X" for drives and "VolumeTag=X" for slots; either spacing is accepted for
# both, as older mtx versions differ. The lazy primary tag stops where the alternate tag starts.
_TAGS = re.compile(r'(?::VolumeTag ?= ?(?P<primary>.*?))?(?::AlternateVolumeTag ?= ?(?P<alternate>.*))?')

CLEANING_PREFIX = 'CLN'
_SHOWN_LINE_LENGTH = 200


@dataclass(frozen=True)
class DriveSlot:
    """A data transfer element (drive), numbered from 0 as mtx does."""

    index: int
    full: bool
    source_slot: Optional[int] = None  # the storage element the tape came from; None if empty or unknown
    barcode: Optional[str] = None
    alternate_barcode: Optional[str] = None


@dataclass(frozen=True)
class Slot:
    """A storage element, numbered from 1 as mtx does; import/export (mail) slots are among them."""

    number: int
    full: bool
    barcode: Optional[str] = None
    import_export: bool = False
    alternate_barcode: Optional[str] = None


@dataclass(frozen=True)
class Tape:
    """A barcoded tape and where it belongs: its slot, or the slot it came from when it is in a drive."""

    barcode: str
    home_slot: Optional[int]
    drive: Optional[int] = None

    @property
    def cleaning(self) -> bool:
        return is_cleaning_tape(self.barcode)


@dataclass(frozen=True)
class LibraryStatus:
    changer: str  # the device name mtx printed in the header
    drives: tuple  # of DriveSlot, index order
    slots: tuple  # of Slot, number order
    import_export_count: int = 0  # as the header says

    def drive(self, index: int) -> Optional[DriveSlot]:
        return self.drives[index] if 0 <= index < len(self.drives) else None

    def slot(self, number: int) -> Optional[Slot]:
        return self.slots[number - 1] if 1 <= number <= len(self.slots) else None

    def holders(self, barcode: str) -> tuple:
        """Every drive and slot holding a tape with this barcode (case-insensitive); normally one."""
        wanted = barcode.strip().upper()
        return tuple(
            element
            for element in (*self.drives, *self.slots)
            if element.full and element.barcode and element.barcode.upper() == wanted
        )

    def tapes(self) -> tuple:
        """Every barcoded tape, in slots first and then in drives (tapes without a barcode are left out)."""
        in_slots = [Tape(slot.barcode, slot.number) for slot in self.slots if slot.full and slot.barcode]
        in_drives = [
            Tape(drive.barcode, drive.source_slot, drive.index) for drive in self.drives if drive.full and drive.barcode
        ]
        return tuple(in_slots + in_drives)


def is_cleaning_tape(barcode: str) -> bool:
    return barcode.strip().upper().startswith(CLEANING_PREFIX)


def parse_status(text: str) -> LibraryStatus:
    """Parse the standard output of `mtx -f DEVICE status`."""
    header = None
    drives: list = []
    slots: list = []
    for line_number, raw in enumerate(text.split('\n'), start=1):
        line = raw.rstrip()  # padded volume tags leave trailing blanks; "Full " keeps one anyway
        if not line:
            continue
        if header is None:
            header = _match_or_fail(
                _HEADER,
                line,
                line_number,
                "the '  Storage Changer DEVICE:N Drives, M Slots ( K Import/Export )' header",
            )
            continue
        if line.lstrip().startswith('Data Transfer Element'):
            if slots:
                _fail(line_number, line, 'a drive listed after the storage elements')
            drives.append(_parse_drive(line, line_number, expected_index=len(drives)))
        elif line.lstrip().startswith('Storage Element'):
            slots.append(_parse_slot(line, line_number, expected_number=len(slots) + 1))
        else:
            _fail(line_number, line, 'not a line of mtx status')
    if header is None:
        raise MtxParseError('mtx status printed no "Storage Changer" header (empty output)')
    _check_counts(header, drives, slots)
    return LibraryStatus(
        changer=header['device'],
        drives=tuple(drives),
        slots=tuple(slots),
        import_export_count=int(header['import_export']),
    )


def _parse_drive(line: str, line_number: int, expected_index: int) -> DriveSlot:
    match = _match_or_fail(_DRIVE, line, line_number, 'a "Data Transfer Element N:..." line')
    index = _expect_number(match['index'], expected_index, 'Data Transfer Element', line, line_number)
    if match['empty']:
        return DriveSlot(index=index, full=False)
    primary, alternate = _parse_tags(match['tags'], line, line_number)
    source = int(match['source']) if match['source'] else None
    return DriveSlot(index=index, full=True, source_slot=source, barcode=primary, alternate_barcode=alternate)


def _parse_slot(line: str, line_number: int, expected_number: int) -> Slot:
    match = _match_or_fail(_SLOT, line, line_number, 'a "Storage Element N:..." line')
    number = _expect_number(match['number'], expected_number, 'Storage Element', line, line_number)
    primary, alternate = _parse_tags(match['tags'], line, line_number)
    full = bool(match['full'])
    # A tag on an empty element names no tape that is there: keep only tags of full elements.
    return Slot(
        number=number,
        full=full,
        barcode=primary if full else None,
        import_export=bool(match['import_export']),
        alternate_barcode=alternate if full else None,
    )


def _parse_tags(tags: str, line: str, line_number: int) -> tuple:
    match = _match_or_fail(
        _TAGS, tags, line_number, 'optional ":VolumeTag" and ":AlternateVolumeTag" fields', shown_line=line
    )
    return _barcode(match['primary']), _barcode(match['alternate'])


def _barcode(tag: Optional[str]) -> Optional[str]:
    """A volume tag without its padding; a blank tag is no barcode."""
    if tag is None:
        return None
    return tag.strip() or None


def _expect_number(found: str, expected: int, element: str, line: str, line_number: int) -> int:
    number = int(found)
    if number != expected:
        _fail(line_number, line, f'{element} {number} where mtx lists {element} {expected} next')
    return number


def _check_counts(header: re.Match, drives: list, slots: list) -> None:
    # The header's counts and the listed elements come from the same numbers in mtx; a difference
    # means the output was cut short or mangled. The import/export count is not compared: mtx places
    # import/export elements by position and a library may report fewer than it announced.
    for kind, announced, listed in (
        ('drives', int(header['drives']), len(drives)),
        ('slots', int(header['slots']), len(slots)),
    ):
        if announced != listed:
            raise MtxParseError(
                f'mtx status header announces {announced} {kind} but lists {listed} '
                f'(output cut short or mangled?): {_shown(header.string)}'
            )


def _match_or_fail(pattern: re.Pattern, text: str, line_number: int, expected: str, shown_line: str = None):
    match = pattern.fullmatch(text)
    if match is None:
        _fail(line_number, shown_line if shown_line is not None else text, f'expected {expected}')
    return match


def _fail(line_number: int, line: str, problem: str):
    raise MtxParseError(f'cannot understand mtx status line {line_number} ({problem}): {_shown(line)}')


def _shown(line: str) -> str:
    """The line quoted on one line: repr() escapes control characters; very long lines are cut."""
    if len(line) > _SHOWN_LINE_LENGTH:
        return repr(line[:_SHOWN_LINE_LENGTH]) + '...'
    return repr(line)
