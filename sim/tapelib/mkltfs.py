"""mkltfs stand-in: `mkltfs -d DEVICE [-s SERIAL] [-n NAME] [-f] [-c] [-w]` formats the tape in a drive.

Messages and exit statuses follow ltfs 2.4's mkltfs: 0 formatted, 16 wrong arguments or an
already formatted medium without -f, 8 device trouble (no tape, busy drive, unsupported medium)."""

import datetime
import getopt
import os
import re
import sys

from . import frontend, host, media
from .ltfsmsg import BLOCKSIZE, PACKAGE_VERSION, Messages, gigabytes, runtime_information
from .model import LibraryError
from .store import open_library

NO_ERRORS = 0
OPERATIONAL_ERROR = 8
USAGE_SYNTAX_ERROR = 16

SHORT_OPTIONS = 'i:e:d:b:s:n:r:cokwfqtxhpV'
LONG_OPTIONS = [
    'config=',
    'backend=',
    'device=',
    'blocksize=',
    'tape-serial=',
    'volume-name=',
    'rules=',
    'kmi-backend=',
    'no-compression',
    'no-override',
    'keep-capacity',
    'wipe',
    'long-wipe',
    'destructive',
    'force',
    'quiet',
    'trace',
    'syslogtrace',
    'fulltrace',
    'help',
    'advanced-help',
    'version',
]

USAGE_LINES = [
    'Usage: {program} <options>',
    '',
    'Available options are:',
    '  -d, --device=<name>       Tape device (required)',
    '  -f, --force               Force to format medium',
    '  -s, --tape-serial=<id>    Tape serial number (6 alphanumeric ASCII characters)',
    '  -n, --volume-name=<name>  Tape volume name (empty by default)',
    '  -w, --wipe                Restore the LTFS medium to an unpartitioned medium '
    '(format to a legacy scratch medium)',
    '  -q, --quiet               Suppress progress information and general messages',
    '  -V, --version             Version information',
    '  -h, --help                This help',
]


class Options:
    def __init__(self):
        self.device = None
        self.serial = None
        self.name = ''
        self.force = False
        self.wipe = False
        self.quiet = False


def parse(arguments):
    """Options, or an error line (getopt's complaint or an LTFS message) for a usage error."""
    options = Options()
    try:
        pairs, rest = getopt.gnu_getopt(arguments, SHORT_OPTIONS, LONG_OPTIONS)
    except getopt.GetoptError as error:
        return None, getopt_complaint(error)
    if rest:
        return None, ''  # mkltfs shows only its usage for a stray argument
    for flag, value in pairs:
        if flag in ('-d', '--device'):
            options.device = value
        elif flag in ('-s', '--tape-serial'):
            options.serial = value
        elif flag in ('-n', '--volume-name'):
            options.name = value
        elif flag in ('-f', '--force'):
            options.force = True
        elif flag in ('-w', '--wipe', '--long-wipe'):
            options.wipe = True
        elif flag in ('-q', '--quiet'):
            options.quiet = True
        elif flag in ('-h', '--help', '-p', '--advanced-help'):
            return 'help', None
        elif flag in ('-V', '--version'):
            return 'version', None
        # -c (no compression), -b, -r, -k, -e, -i and the trace flags change nothing we simulate
    if options.serial is not None:
        if len(options.serial) != 6:
            return None, 'LTFS15029E Tape serial must be 6 characters.'
        if not re.fullmatch(r'[0-9A-Z]{6}', options.serial):
            return None, 'LTFS15030E Tape serial must contain only ASCII digits and capital letters.'
    if options.device is None:
        return None, "LTFS15026E Device name must use the '-d' option."
    if '/' in options.name or ':' in options.name:
        return None, 'LTFS15031E Volume name must conform to file name rules.'
    return options, None


def getopt_complaint(error):
    """glibc getopt's wording, which the real mkltfs prints."""
    option = error.opt
    if f'--{option}' not in error.msg:
        if 'requires argument' in error.msg:
            return f"option requires an argument -- '{option}'"
        return f"invalid option -- '{option}'"
    if 'requires argument' in error.msg:
        return f"option '--{option}' requires an argument"
    if 'must not have an argument' in error.msg:
        return f"option '--{option}' doesn't allow an argument"
    if 'unique prefix' in error.msg:
        return f"option '--{option}' is ambiguous"
    return f"unrecognized option '--{option}'"


def default_volume_serial(tape):
    """Without -s the volume serial is the cartridge's barcode number (its first six characters)."""
    barcode = tape.barcode or ''
    return barcode[:6] if re.fullmatch(r'[0-9A-Z]{6}.*', barcode) else ''


def format_in_drive(library, options, say):
    """Format (or wipe) the tape in the drive options.device names; returns the exit status."""
    drive = next(
        (
            drive
            for drive in library.drives
            if options.device == drive.serial or os.path.realpath(options.device) == os.path.realpath(drive.device)
        ),
        None,
    )
    if drive is None:
        say('15009E', f"Cannot open device '{options.device}' (-21711).")
        return OPERATIONAL_ERROR
    if drive.mount is not None:  # an ltfs has the drive (or died leaving the tape mounted)
        say('15009E', f"Cannot open device '{options.device}' (-21710).")
        return OPERATIONAL_ERROR
    say('11330I', 'Loading cartridge.')
    if drive.tape is None:
        say('12016E', 'No medium present.')
        say('15044E', 'Cannot set up tape device.')
        return OPERATIONAL_ERROR
    say('11332I', 'Load successful.')
    tape = library.tapes[drive.tape]
    if tape.cleaning:
        say('15049I', 'Checking the medium (mount).')
        say('11298E', 'Cannot read volume: unsupported medium.')
        return OPERATIONAL_ERROR
    image = media.image_path(library.root, tape)
    scratch = media.private_mount_dir(library.root, f'format-drive{drive.index}')
    if options.wipe:
        say('17071I', 'Unpartitioning the medium.')
        if os.path.exists(image):
            os.unlink(image)
        tape.formatted = False
        tape.volume_serial = tape.volume_name = tape.volume_uuid = ''
        return NO_ERRORS
    if not options.force:
        say('15049I', 'Checking the medium (mount).')
        if tape.formatted:
            say('15047E', 'Medium is already formatted (0).')
            say('15048I', 'Need to specify -f or --force option to format this medium.')
            return USAGE_SYNTAX_ERROR
    else:
        say('15049I', 'Checking the medium (load).')
    say('15010I', 'Creating data partition b on SCSI partition 1.')
    say('15011I', 'Creating index partition a on SCSI partition 0.')
    say('11097I', 'Partitioning the medium.')
    try:
        baseline = media.format_image(image, library.capacity, scratch)
    except (host.HostError, OSError) as error:
        say('12053E', f'Cannot format medium: backend call failed ({error}).')
        say('15012E', 'Failed to format the medium.')
        return OPERATIONAL_ERROR
    for partition in ('b', 'a'):
        say('11100I', f'Writing label to partition {partition}.')
        say('11278I', f'Writing index to partition {partition}.')
    tape.formatted = True
    tape.baseline_used = baseline
    tape.generation = 1
    tape.volume_serial = options.serial if options.serial is not None else default_volume_serial(tape)
    tape.volume_name = options.name
    tape.volume_uuid = media.new_volume_uuid()
    tape.format_time = datetime.datetime.now(datetime.timezone.utc).isoformat()
    say('15013I', f'Volume UUID is: {tape.volume_uuid}.')
    say.plain('')
    say('15019I', f'Volume capacity is {gigabytes(library.capacity)} GB.')
    return NO_ERRORS


def main(argv=None):
    root, program, arguments = frontend.split_wrapper_arguments(sys.argv[1:] if argv is None else argv)
    options, problem = parse(arguments)
    usage = '\n'.join(line.format(program=program) for line in USAGE_LINES) + '\n'
    if options == 'help':
        sys.stderr.write('\n' + usage)
        return NO_ERRORS
    if options == 'version':
        sys.stderr.write(f'LTFS15059I mkltfs version {PACKAGE_VERSION}.\n')
        return NO_ERRORS
    if options is None:
        if problem:
            sys.stderr.write((problem if problem.startswith('LTFS') else f'{program}: {problem}') + '\n')
        if problem.startswith('LTFS15026E') or problem.startswith('LTFS15031E'):
            sys.stderr.write('LTFS15002E Option validation failed.\n')
        sys.stderr.write('\n' + usage)
        return USAGE_SYNTAX_ERROR

    say = Messages()
    say('15000I', f'Starting mkltfs, LTFS version {PACKAGE_VERSION}, log level 2.')
    runtime_information(say, '15041I', '15042I', '15043I', [program, *arguments])
    say('17085I', 'Plugin: Loading "sg" tape backend.')
    say('15003I', f"Formatting device '{options.device}'.")
    say('15004I', f'LTFS volume blocksize: {BLOCKSIZE}.')
    say('15005I', 'Index partition placement policy: None.')
    say.plain('')
    emit(say, options.quiet)
    try:
        with open_library(root) as library:
            status = format_in_drive(library, options, say)
    except LibraryError as error:
        say('15009E', f"Cannot open device '{options.device}' ({error}).")
        status = OPERATIONAL_ERROR
    if options.wipe:
        say(
            '15040I' if status == NO_ERRORS else '15039I',
            'Medium unformatted successfully.' if status == NO_ERRORS else 'Unformatting failed.',
        )
    else:
        say(
            '15024I' if status == NO_ERRORS else '15023I',
            'Medium formatted successfully.' if status == NO_ERRORS else 'Formatting failed.',
        )
    emit(say, options.quiet)
    return status


def emit(say, quiet):
    """Write the collected lines; --quiet keeps only warnings and errors, as mkltfs -q does."""
    for line in say.take():
        if quiet and not re.search(r'LTFS\d+[EW] ', line):
            continue
        sys.stderr.write(line + '\n')
    sys.stderr.flush()


if __name__ == '__main__':
    sys.exit(main())
