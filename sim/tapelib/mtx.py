"""mtx stand-in: `mtx [-f DEVICE] COMMAND [ARGS]...` as mtx 1.3.12 runs it, on the virtual library.

Commands run left to right like the real tool ("unload 3 0 load 4 0"); errors print
"<argv0>: <message>" on stderr (real mtx uses its argv[0], so a full path shows as one) and exit 1,
with the "mtx: Request Sense: ..." block first when the library refused a move."""

import os
import re
import sys

from . import frontend
from .model import LibraryError
from .sense import DESTINATION_FULL, SOURCE_EMPTY, SenseError, request_sense_lines
from .store import open_library

VERSION = '1.3.12'
VOLUME_TAG_WIDTH = 36  # the volume tag field is sent space-padded and mtx prints it whole

USAGE = """Usage:
	mtx --version
	mtx [ -f <loader-dev> ] noattach <more commands>
	mtx [ -f <loader-dev> ] inquiry | inventory 
	mtx [ -f <loader-dev> ] [altres] [nobarcode] status
	mtx [ -f <loader-dev> ] [altres] first [<drive#>]
	mtx [ -f <loader-dev> ] [altres] last [<drive#>]
	mtx [ -f <loader-dev> ] [altres] previous [<drive#>]
	mtx [ -f <loader-dev> ] [altres] next [<drive#>]
	mtx [ -f <loader-dev> ] [altres] [invert] load <storage-element-number> [<drive#>]
	mtx [ -f <loader-dev> ] [altres] [invert] unload [<storage-element-number>][<drive#>]
	mtx [ -f <loader-dev> ] [altres] [eepos eepos-number] transfer <storage-element-number> <storage-element-number>
	mtx [ -f <loader-dev> ] [altres] [eepos eepos-number][invert][invert2] exchange <storage-element-number> <storage-element-number>
	mtx [ -f <loader-dev> ] [altres] position <storage-element-number>
	mtx [ -f <loader-dev> ] eject
"""

# name: (numeric arguments taken, needs the changer device)
COMMANDS = {
    'status': (0, True),
    'load': (2, True),
    'unload': (2, True),
    'transfer': (2, True),
    'inquiry': (0, True),
    'inventory': (0, True),
    '--version': (0, False),
    'nobarcode': (0, False),
    'altres': (0, False),
    'invert': (0, False),
    'invert2': (0, False),
    'noattach': (0, False),
    'eepos': (1, False),
    'first': (1, True),
    'last': (1, True),
    'previous': (1, True),
    'next': (1, True),
    'position': (1, True),
    'exchange': (3, True),
    'eject': (0, True),
    'erase': (0, True),
}
NOT_SIMULATED = {'first', 'last', 'previous', 'next', 'position', 'exchange', 'eject', 'erase'}

# Sense codes mtx turns into a one-line message of its own instead of printing the sense block.
SPECIAL_MOVE_FAILURES = {
    (0x30, 0x03): lambda source, destination: 'Cleaning Cartridge Installed and Ejected',
    (0x3A, 0x00): lambda source, destination: 'Drive needs offline before move',
    DESTINATION_FULL: lambda source, destination: f'Destination Element Address {destination} is Already Full',
    SOURCE_EMPTY: lambda source, destination: f'Source Element Address {source} is Empty',
}


class Fatal(Exception):
    """mtx's FatalError(): the run stops with this message."""


class Usage(Exception):
    """mtx's Usage(): the usage text on stderr, exit 1."""


def volume_tag(barcode):
    return barcode.ljust(VOLUME_TAG_WIDTH)


def status_text(library, device, barcodes=True):
    """`mtx status` output, byte for byte in mtx's format."""
    lines = [
        f'  Storage Changer {device}:{len(library.drives)} Drives, {len(library.slots)} Slots '
        f'( {library.import_export_count} Import/Export )'
    ]
    for drive in library.drives:
        line = f'Data Transfer Element {drive.index}:'
        if drive.tape is None:
            line += 'Empty'
        else:
            if drive.source_slot is not None:
                line += f'Full (Storage Element {drive.source_slot} Loaded)'
            else:
                line += 'Full (Unknown Storage Element Loaded)'
            barcode = library.tapes[drive.tape].barcode
            if barcodes and barcode:
                line += f':VolumeTag = {volume_tag(barcode)}'
        lines.append(line)
    for slot in library.slots:
        kind = ' IMPORT/EXPORT' if slot.import_export else ''
        line = f'      Storage Element {slot.number}{kind}:{"Full " if slot.tape else "Empty"}'
        barcode = library.tapes[slot.tape].barcode if slot.tape else None
        if barcodes and barcode:
            line += f':VolumeTag={volume_tag(barcode)}'
        lines.append(line)
    return '\n'.join(lines) + '\n'


def numeric_argument(text):
    """mtx's get_arg(): a number if the argument starts with a digit, else -1."""
    match = re.match(r'\d+', text)
    return int(match.group()) if match else -1


class Session:
    """One mtx run: commands executed in order against the locked library."""

    def __init__(self, library):
        self.library = library
        self.device = None
        self.barcodes = True

    def run(self, arguments):
        index = 0
        while index < len(arguments):
            argument = arguments[index]
            if argument == '-f':
                if index + 1 >= len(arguments):
                    raise Usage()
                self.open_device(arguments[index + 1])
                index += 2
                continue
            if argument not in COMMANDS:
                raise Usage()
            wanted, needs_device = COMMANDS[argument]
            index += 1
            numbers = []
            while len(numbers) < wanted and index < len(arguments):
                number = numeric_argument(arguments[index])
                if number == -1:
                    break
                numbers.append(number)
                index += 1
            numbers += [-1] * (wanted - len(numbers))
            if needs_device and self.device is None:
                self.open_device(os.environ.get('CHANGER') or os.environ.get('TAPE') or '/dev/changer')
            self.execute(argument, numbers)

    def open_device(self, device):
        if not os.path.exists(device):
            raise Fatal(f"cannot open SCSI device '{device}' - No such file or directory")
        if os.path.realpath(device) != os.path.realpath(self.library.changer_device):
            raise Fatal(f"cannot open SCSI device '{device}' - No such device or address")
        self.device = device

    def execute(self, command, numbers):
        if command == '--version':
            sys.stderr.write(f'mtx version {VERSION}\n\n')
            raise Usage()
        if command in NOT_SIMULATED:
            raise Fatal(f"'{command}' is not simulated by the virtual library (sim/tapelib)")
        if command == 'nobarcode':
            self.barcodes = False
        elif command == 'status':
            sys.stdout.write(status_text(self.library, self.device, self.barcodes))
        elif command == 'inquiry':
            sys.stdout.write(
                "Product Type: Medium Changer\nVendor ID: 'IBM     '\n"
                "Product ID: '3573-TL         '\nRevision: 'F.11'\n"
                'Attached Changer API: No\n'
            )
        elif command == 'load':
            self.load(*numbers)
        elif command == 'unload':
            self.unload(*numbers)
        elif command == 'transfer':
            self.transfer(*numbers)
        # inventory, altres, invert, invert2, noattach, eepos: nothing to do in a virtual library

    def load(self, slot_number, drive_number):
        if slot_number < 1:
            raise Fatal('No source specified')
        drive_number = max(drive_number, 0)
        if slot_number > len(self.library.slots):
            raise Fatal(f"Invalid <storage-element-number> argument '{slot_number}' to 'load' command")
        if drive_number >= len(self.library.drives):
            raise Fatal(f"illegal <drive-number> argument '{drive_number}' to 'load' command")
        drive = self.library.drives[drive_number]
        if drive.tape is not None:
            raise Fatal(f'Drive {drive_number} Full (Storage Element {drive.source_slot or 0} loaded)')
        slot = self.library.slots[slot_number - 1]
        self.announce(f'Loading media from Storage Element {slot_number} into drive {drive_number}...')
        self.move(slot.address, drive.address)
        self.announce('done\n')

    def unload(self, slot_number, drive_number):
        drive_number = max(drive_number, 0)
        if drive_number >= len(self.library.drives):
            raise Fatal(f"illegal <drive-number> argument '{drive_number}' to 'unload' command")
        drive = self.library.drives[drive_number]
        if slot_number < 0:
            if drive.source_slot is None:
                raise Fatal(f'No Source for tape in drive {drive_number}!')
            slot_number = drive.source_slot
        if not 1 <= slot_number <= len(self.library.slots):
            raise Fatal(f"illegal <storage-element-number> argument '{slot_number}' to 'unload' command")
        if drive.tape is None:
            raise Fatal(f'Data Transfer Element {drive_number} is Empty')
        slot = self.library.slots[slot_number - 1]
        if slot.tape is not None:
            raise Fatal(f'Storage Element {slot_number} is Already Full')
        self.announce(f'Unloading drive {drive_number} into Storage Element {slot_number}...')
        self.move(drive.address, slot.address)
        self.announce('done\n')

    def transfer(self, source_number, destination_number):
        if source_number < 1:
            raise Fatal('No source specified')
        if destination_number < 1:
            raise Fatal('No destination specified')
        if source_number > len(self.library.slots):
            raise Fatal('Invalid source')
        if destination_number > len(self.library.slots):
            raise Fatal('Invalid destination')
        self.move(self.library.slots[source_number - 1].address, self.library.slots[destination_number - 1].address)

    def move(self, source, destination):
        try:
            self.library.move(source, destination)
        except SenseError as error:
            special = SPECIAL_MOVE_FAILURES.get((error.asc, error.ascq))
            if special:
                raise Fatal(special(source, destination)) from None
            sys.stdout.flush()
            sys.stderr.write(''.join(line + '\n' for line in request_sense_lines(error)))
            raise Fatal(f'MOVE MEDIUM from Element Address {source} to {destination} Failed') from None

    @staticmethod
    def announce(text):
        sys.stdout.write(text)
        sys.stdout.flush()


def main(argv=None):
    root, program, arguments = frontend.split_wrapper_arguments(sys.argv[1:] if argv is None else argv)
    failure = None
    try:
        with open_library(root) as library:
            try:
                Session(library).run(arguments)
            except (Fatal, Usage) as error:
                failure = error  # the library keeps what happened so far (a consumed fault, a move)
    except LibraryError as error:
        return frontend.complain(program, str(error))
    if isinstance(failure, Usage):
        sys.stdout.flush()
        sys.stderr.write(USAGE)
        return 1
    if failure is not None:
        return frontend.complain(program, str(failure))
    return 0


if __name__ == '__main__':
    sys.exit(main())
