"""tapeinfo stand-in: `tapeinfo -f DEVICE` prints what mtx 1.3.12's tapeinfo reads from a drive."""

import os
import sys

from . import frontend
from .ltfsmsg import PRODUCT, REVISION, VENDOR
from .model import LibraryError
from .store import open_library

# Density codes LTO drives report, by the media type in the barcode's last two characters.
DENSITY_CODES = {'L5': 0x58, 'L6': 0x5A, 'L7': 0x5C, 'M8': 0x5D, 'L8': 0x5E, 'L9': 0x60}
DEFAULT_DENSITY = 0x60


# What a drive reports about block size and compression, loaded or not.
COMPRESSION = [
    'BlockSize: 0',
    'DataCompEnabled: yes',
    'DataCompCapable: yes',
    'DataDeCompEnabled: yes',
    'CompType: 0xff',
    'DeCompType: 0xff',
]


def drive_report(library, drive):
    lines = [
        'Product Type: Tape Drive',
        f"Vendor ID: '{VENDOR}'",
        f"Product ID: '{PRODUCT}'",
        f"Revision: '{REVISION}'",
        'Attached Changer API: No',
        f"SerialNumber: '{drive.serial}'",
        'MinBlock: 1',
        'MaxBlock: 8388608',
        f'SCSI ID: {drive.index}',
        'SCSI LUN: 0',
    ]
    tape = library.tapes[drive.tape] if drive.tape else None
    if tape is None:
        return lines + ['Ready: no', 'BufferedMode: yes', 'Medium Type: Not Loaded', 'Density Code: 0x00', *COMPRESSION]
    density = DENSITY_CODES.get((tape.barcode or '')[-2:], DEFAULT_DENSITY)
    return lines + [
        'Ready: yes',
        'BufferedMode: yes',
        'Medium Type: 0x00',
        f'Density Code: 0x{density:02x}',
        *COMPRESSION,
        'BOP: yes',
        'Block Position: 0',
        # IBM drives answer the capacity page with -1 while the tape is not positioned for LTFS.
        'Partition 0 Remaining Kbytes: -1',
        'Partition 0 Size in Kbytes: -1',
        'ActivePartition: 0',
        'EarlyWarningSize: 0',
        f'NumPartitions: {1 if tape.formatted else 0}',
        'MaxPartitions: 3',
    ]


CHANGER_REPORT = [
    'Product Type: Medium Changer',
    "Vendor ID: 'IBM     '",
    "Product ID: '3573-TL         '",
    "Revision: 'F.11'",
    'Attached Changer API: No',
    "SerialNumber: '00L4U78B1234_LL0'",
    'SCSI ID: 1',
    'SCSI LUN: 1',
    'Ready: yes',
]


def main(argv=None):
    root, program, arguments = frontend.split_wrapper_arguments(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 2 or arguments[0] != '-f':
        sys.stderr.write('Usage: tapeinfo -f <generic-device>\n')
        return 1
    device = arguments[1]
    if not os.path.exists(device):
        return frontend.complain(program, f"cannot open SCSI device '{device}' - No such file or directory")
    try:
        with open_library(root) as library:
            wanted = os.path.realpath(device)
            drive = next((drive for drive in library.drives if os.path.realpath(drive.device) == wanted), None)
            if drive is not None:
                report = drive_report(library, drive)
            elif wanted == os.path.realpath(library.changer_device):
                report = CHANGER_REPORT
            else:
                return frontend.complain(program, f"cannot open SCSI device '{device}' - No such device or address")
    except LibraryError as error:
        return frontend.complain(program, str(error))
    sys.stdout.write(''.join(line + '\n' for line in report))
    return 0


if __name__ == '__main__':
    sys.exit(main())
