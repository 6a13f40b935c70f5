"""python -m sim.tapelib init|fault|show|cleanup: administer a virtual tape library (see __init__.py)."""

import argparse
import re
import sys

from . import admin, builder
from .model import LibraryError
from .sense import SENSE_KEYS, parse_code, parse_sense_key
from .store import open_library

SIZE_SUFFIXES = {'': 1, 'K': 1024, 'M': 1024**2, 'G': 1024**3, 'T': 1024**4}
# Printable ASCII without blanks, as a volume tag holds; no '/', since a barcode names its cartridge's folder.
BARCODE = re.compile(r'[!-.0-~]{1,32}')
MINIMUM_CAPACITY = 160 * 1024**2  # LTFS's file backend fails every write below 160 MiB


def size(text):
    """Bytes: a number, optionally with K, M, G or T (powers of 1024, 'iB' allowed)."""
    match = re.fullmatch(r'(\d+)\s*([KMGT]?)(?:i?B)?', text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f'{text!r} is not a size (bytes, or a number with K, M, G, T)')
    return int(match.group(1)) * SIZE_SUFFIXES[match.group(2).upper()]


def capacity(text):
    value = size(text)
    if value < MINIMUM_CAPACITY:
        raise argparse.ArgumentTypeError(f'{text}: a tape needs at least 160M here')
    return value


def tape_list(text):
    """Comma-separated barcodes for slots 1, 2, ...; '-' is a cartridge without a barcode label."""
    tapes = []
    for item in (part.strip() for part in text.split(',')) if text.strip() else []:
        if item == '-':
            tapes.append(None)
        elif BARCODE.fullmatch(item):
            tapes.append(item)
        else:
            raise argparse.ArgumentTypeError(f'{item!r} is not a barcode (1-32 printable characters) or "-"')
    return tapes


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text}: must be 1 or more')
    return value


def hex_byte(text):
    try:
        return parse_code(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def sense_key(text):
    try:
        return parse_sense_key(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parser():
    main = argparse.ArgumentParser(prog='python -m sim.tapelib', description=__doc__)
    commands = main.add_subparsers(dest='command', required=True)

    init = commands.add_parser('init', help='create a library and print the pytarchive config lines')
    init.add_argument('directory')
    init.add_argument('--slots', type=positive, required=True, help='storage slots, import/export ones included')
    init.add_argument('--drives', type=positive, default=1)
    init.add_argument(
        '--tapes', type=tape_list, default=[], help='barcodes for slots 1, 2, ... ("-": a tape without barcode)'
    )
    init.add_argument('--capacity', type=capacity, required=True, help='bytes per tape (K/M/G/T allowed)')
    init.add_argument(
        '--import-export', type=int, default=0, metavar='K', help='the last K slots are import/export slots'
    )

    fault = commands.add_parser('fault', help='inject a fault')
    fault.add_argument('directory')
    kinds = fault.add_subparsers(dest='kind', required=True)
    mtx_error = kinds.add_parser('mtx-error', help='the next mtx move(s) fail with this sense data')
    mtx_error.add_argument(
        '--sense-key',
        type=sense_key,
        required=True,
        help=f'name or number ({", ".join(k for k in SENSE_KEYS if not k.startswith("0x"))})',
    )
    mtx_error.add_argument('--asc', type=hex_byte, required=True, help='additional sense code, hex (53)')
    mtx_error.add_argument('--ascq', type=hex_byte, required=True, help='qualifier, hex (03)')
    mtx_error.add_argument('--count', type=positive, default=1)
    tape_full = kinds.add_parser('tape-full', help='make the cartridge this small (from its next load)')
    tape_full.add_argument('barcode')
    tape_full.add_argument('--at', type=capacity, required=True, help='its capacity (at least 160M)')
    flip = kinds.add_parser('flip-byte', help='flip one byte of a file in its data record on the cartridge')
    flip.add_argument('barcode')
    flip.add_argument('path', help='the file, as seen from the tape root (where the newest index puts it)')
    damage = kinds.add_parser('damage', help="take the cartridge's LTFS labels away: ltfs cannot mount it")
    damage.add_argument('barcode')
    move = kinds.add_parser('move', help='an operator puts a tape into another slot by hand')
    move.add_argument('barcode')
    move.add_argument('--to-slot', type=positive, required=True)
    kinds.add_parser('clear', help='no pending mtx errors; damaged cartridges made whole')

    show = commands.add_parser('show', help='print the library state')
    show.add_argument('directory')
    cleanup = commands.add_parser('cleanup', help='end every ltfs of the library and undo its mounts')
    cleanup.add_argument('directory')
    return main


def run(arguments):
    if arguments.command == 'init':
        library = builder.create(
            arguments.directory,
            slots=arguments.slots,
            drives=arguments.drives,
            tapes=arguments.tapes,
            capacity=arguments.capacity,
            import_export=arguments.import_export,
        )
        print('\n'.join(builder.config_lines(library)))
    elif arguments.command == 'fault':
        run_fault(arguments)
    elif arguments.command == 'show':
        with open_library(arguments.directory) as library:
            print('\n'.join(admin.describe(library)))
    elif arguments.command == 'cleanup':
        for line in admin.cleanup(arguments.directory):
            print(line)


def run_fault(arguments):
    root = arguments.directory
    if arguments.kind == 'mtx-error':
        admin.add_mtx_fault(root, arguments.sense_key, arguments.asc, arguments.ascq, arguments.count)
        print(
            f'next {arguments.count} mtx move(s) fail: {SENSE_KEYS[arguments.sense_key]}, '
            f'ASC {arguments.asc:02X}, ASCQ {arguments.ascq:02X}'
        )
    elif arguments.kind == 'tape-full':
        tape = admin.set_capacity(root, arguments.barcode, arguments.at)
        print(f'tape {tape.label} holds {arguments.at // 1024**2} MiB from its next load')
    elif arguments.kind == 'flip-byte':
        tape, (record, offset, old, new) = admin.flip_byte(root, arguments.barcode, arguments.path)
        print(f'{arguments.path} on {tape.label}: record {record}, byte {offset} flipped (0x{old:02x} -> 0x{new:02x})')
    elif arguments.kind == 'damage':
        tape = admin.damage(root, arguments.barcode)
        print(f'tape {tape.label}: its LTFS labels are gone until `fault {root} clear`')
    elif arguments.kind == 'move':
        admin.move_by_hand(root, arguments.barcode, arguments.to_slot)
        print(f'{arguments.barcode} is now in slot {arguments.to_slot}')
    elif arguments.kind == 'clear':
        admin.clear_faults(root)
        print('no faults pending')


def main(argv=None):
    arguments = parser().parse_args(argv)
    try:
        run(arguments)
    except (LibraryError, OSError) as error:
        print(f'sim.tapelib: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
