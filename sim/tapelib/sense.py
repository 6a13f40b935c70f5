"""SCSI sense data as a medium changer returns it, with the names mtx prints for it."""

# Sense key names exactly as mtx 1.3.12 prints them (mtxl.c, sense_keys[]).
SENSE_KEYS = (
    'No Sense',
    'Recovered Error',
    'Not Ready',
    'Medium Error',
    'Hardware Error',
    'Illegal Request',
    'Unit Attention',
    'Data Protect',
    'Blank Check',
    '0x09',
    '0x0a',
    'Aborted Command',
    '0x0c',
    'Volume Overflow',
    'Miscompare',
    '0x0f',
)
ILLEGAL_REQUEST = SENSE_KEYS.index('Illegal Request')

# Additional sense codes the library itself answers (SMC-3 / SPC ASC-ASCQ table).
SOURCE_EMPTY = (0x3B, 0x0E)  # MEDIUM SOURCE ELEMENT EMPTY
DESTINATION_FULL = (0x3B, 0x0D)  # MEDIUM DESTINATION ELEMENT FULL
REMOVAL_PREVENTED_BY_DRIVE = (0x53, 0x03)  # MEDIUM REMOVAL PREVENTED BY DATA TRANSFER ELEMENT


class SenseError(Exception):
    """A command the library refused, with the sense data it answered."""

    def __init__(self, sense_key, asc, ascq):
        super().__init__(f'{SENSE_KEYS[sense_key]} {asc:02X}/{ascq:02X}')
        self.sense_key = sense_key
        self.asc = asc
        self.ascq = ascq


def parse_sense_key(text):
    """A sense key given by name ('Illegal Request', case-insensitive) or number (5, 0x5)."""
    wanted = text.strip().lower()
    for number, name in enumerate(SENSE_KEYS):
        if name.lower() == wanted:
            return number
    try:
        number = int(wanted, 0)
    except ValueError:
        number = -1
    if not 0 <= number < len(SENSE_KEYS):
        names = ', '.join(name for name in SENSE_KEYS if not name.startswith('0x'))
        raise ValueError(f'unknown sense key {text!r} (one of: {names}, or a number 0-15)')
    return number


def parse_code(text):
    """An ASC or ASCQ byte written in hex as mtx's output and the T10 sense code tables do: '53', '0x3B'."""
    try:
        value = int(text, 16)
    except ValueError:
        value = -1
    if not 0 <= value <= 0xFF:
        raise ValueError(f'{text!r} is not a hex byte (00-FF)')
    return value
