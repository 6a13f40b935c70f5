"""The tape library layer: the changer robot through mtx, the drive through LTFS."""

from .changer import Changer
from .drive import Drive
from .errors import AlreadyFormatted, DriveError, LibraryError, MtxError, MtxParseError
from .status import DriveSlot, LibraryStatus, Slot, Tape, is_cleaning_tape, parse_status

__all__ = [
    'AlreadyFormatted',
    'Changer',
    'Drive',
    'DriveError',
    'DriveSlot',
    'LibraryError',
    'LibraryStatus',
    'MtxError',
    'MtxParseError',
    'Slot',
    'Tape',
    'is_cleaning_tape',
    'parse_status',
]
