"""The virtual library as SCSI devices: CDB bytes in, status, fixed-format sense and data-in out.

The real mtx and tapeinfo (Debian's mtx 1.3.12) talk to these devices through shim.c, an
LD_PRELOAD library that makes open()/ioctl()/close() of chosen device paths work without a SCSI
layer in the kernel. The shim stays thin: for each SG_IO it sends the CDB (and any data-out) to
`python -m sim.tapelib.scsi.model serve DEVICE KIND`, started when the device is opened, and copies
back what this module answers. The library's rules (elements, volume tags, MOVE MEDIUM checks,
faults) live here and in sim/tapelib/model.py, and are tested by calling execute() with CDBs.

Environment read by the shim (and passed on to this module):
  TAPELIB_SCSI_DEVICES  comma-separated PATH=KIND: KIND is `changer` or `drive:N` (data transfer
                        element N), e.g. "LIB/dev/sch0=changer,LIB/dev/nst0=drive:0". Opening any
                        other path goes to the real open().
  TAPELIB_SCSI_PYTHON   the interpreter to start (default python3); sim/ must be importable by it
                        (set PYTHONPATH to the project).
  TAPELIB_SCSI_LIBRARY  the library directory (default: the parent of the device's folder, as
                        `python -m sim.tapelib init DIR` lays out DIR/dev/sch0).
  TAPELIB_SCSI_TRACE    if set, the shim logs each ioctl on the devices (and SG_IO's CDB) on stderr.

Wire protocol on the socket the shim passes as standard input/output (native byte order):
  request:  u32 cdb_len, i32 direction (-1 none, -2 to device, -3 from device: SG_DXFER_*),
            u32 dxfer_len, the CDB, then dxfer_len bytes of data-out when direction is -2
  reply:    u8 status, u8 sense_len, u32 data_len, sense bytes, data-in bytes
"""

import glob
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import cartridge
from ..builder import tapes_folder
from ..model import Drive, LibraryError
from ..sense import ILLEGAL_REQUEST, REMOVAL_PREVENTED_BY_DRIVE, SenseError
from ..store import open_library

GOOD = 0x00
CHECK_CONDITION = 0x02

NO_SENSE = 0x0
NOT_READY = 0x2
UNIT_ATTENTION = 0x6

INVALID_OPCODE = (0x20, 0x00)
INVALID_ELEMENT_ADDRESS = (0x21, 0x01)
INVALID_FIELD_IN_CDB = (0x24, 0x00)
MEDIUM_NOT_PRESENT = (0x3A, 0x00)

TEST_UNIT_READY = 0x00
REQUEST_SENSE = 0x03
READ_BLOCK_LIMITS = 0x05
INQUIRY = 0x12
MODE_SENSE_6 = 0x1A
PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1E
READ_POSITION = 0x34
LOG_SENSE = 0x4D
MOVE_MEDIUM = 0xA5
READ_ELEMENT_STATUS = 0xB8
INITIALIZE_ELEMENT_STATUS = 0x07

ELEMENT_ADDRESS_PAGE = 0x1D
TAPE_ALERT_PAGE = 0x2E
TRANSPORT_ADDRESS = 0  # the robot's own element address, as the IBM TS4300 reports it

# Element type codes (SMC-3).
ALL_ELEMENTS, TRANSPORT, STORAGE, IMPORT_EXPORT, DATA_TRANSFER = 0, 1, 2, 3, 4

# The drives: IBM LTO-9 half-height, as the `file` backend's drive files are named (ULTRIUM-HH9).
VENDOR = 'IBM     '
PRODUCT = 'ULTRIUM-HH9     '
REVISION = 'Q3G3'
DENSITY_CODES = {'L5': 0x58, 'L6': 0x5A, 'L7': 0x5C, 'M8': 0x5D, 'L8': 0x5E, 'L9': 0x60}
DEFAULT_DENSITY = 0x60

CHANGER_VENDOR = 'IBM     '
CHANGER_PRODUCT = '3573-TL         '
CHANGER_REVISION = 'F.11'
CHANGER_SERIAL = '00L4U78B1234_LL0'
VOLUME_TAG_LENGTH = 36  # 32 bytes of identifier, 2 reserved, 2 of sequence number: all blanks here


@dataclass
class Reply:
    status: int = GOOD
    sense: bytes = b''
    data: bytes = b''


def fixed_sense(key, asc=0, ascq=0):
    """18 bytes of fixed-format, current sense data (response code 70h)."""
    sense = bytearray(18)
    sense[0] = 0x70
    sense[2] = key & 0x0F
    sense[7] = 10  # additional sense length: bytes 8-17
    sense[12] = asc
    sense[13] = ascq
    return bytes(sense)


class Check(Exception):
    """A command ended with CHECK CONDITION and this sense."""

    def __init__(self, key, asc, ascq):
        super().__init__(f'{key:X}/{asc:02X}/{ascq:02X}')
        self.sense = fixed_sense(key, asc, ascq)


def illegal(code):
    return Check(ILLEGAL_REQUEST, *code)


# --- is a drive held by a process -------------------------------------------------------------


def processes_holding(path, exclude=(os.getpid(),)):
    """The pids (other than ours) with path open, read from /proc/*/fd."""
    wanted = os.path.realpath(path)
    holders = []
    for link in glob.glob('/proc/[0-9]*/fd/*'):
        try:
            target = os.readlink(link)
        except OSError:
            continue  # the process or fd went away while we looked
        if target == wanted:
            pid = int(link.split('/')[2])
            if pid not in exclude and pid not in holders:
                holders.append(pid)
    return holders


def drive_held(library, drive):
    """Does a process (ltfs serving the tape, mkltfs, ltfsck) hold the drive? Its drive file open in
    a process stands for the PREVENT MEDIUM REMOVAL that ltfs keeps until its index is written: the
    `file` backend keeps it open from load to unload."""
    return bool(processes_holding(drive.device))


def place_cartridges(library):
    """Make each drive file say what the robot put into the drive: a load writes it, an unload
    removes it (the backend reads an empty drive as a missing file)."""
    for drive in library.drives:
        path = Path(drive.device)
        if drive.tape is None:
            cartridge.unload(path)
        elif cartridge.loaded(path) != os.path.relpath(tapes_folder(library.root) / drive.tape, path.parent):
            cartridge.load(path, tapes_folder(library.root) / drive.tape)


# --- data blocks ------------------------------------------------------------------------------


def inquiry_data(peripheral_type, vendor, product, revision, changer_attached=False):
    data = bytearray(36)
    data[0] = peripheral_type
    data[1] = 0x80  # removable medium
    data[2] = 0x05  # SPC-3
    data[3] = 0x02  # response data format 2
    data[4] = len(data) - 5
    data[6] = 0x08 if changer_attached else 0x00  # MChngr
    data[8:16] = vendor.encode().ljust(8)[:8]
    data[16:32] = product.encode().ljust(16)[:16]
    data[32:36] = revision.encode().ljust(4)[:4]
    return bytes(data)


def serial_page(serial):
    body = serial.encode()
    return bytes([0x01, 0x80, 0x00, len(body)]) + body


def supported_pages(pages):
    return bytes([0x01, 0x00, 0x00, len(pages), *pages])


def volume_tag(barcode):
    """The primary volume tag field: the label padded with blanks, as an IBM library sends it;
    all zero for an element without a labelled cartridge (mtx then prints no tag at all)."""
    if not barcode:
        return bytes(VOLUME_TAG_LENGTH)
    return barcode.encode().ljust(VOLUME_TAG_LENGTH)[:VOLUME_TAG_LENGTH]


def element_address_page(library):
    storage = [slot for slot in library.slots if not slot.import_export]
    mailslots = [slot for slot in library.slots if slot.import_export]
    page = struct.pack(
        '>BBHHHHHHHHH',
        ELEMENT_ADDRESS_PAGE,
        0x12,
        TRANSPORT_ADDRESS,
        1,
        storage[0].address if storage else 0,
        len(storage),
        mailslots[0].address if mailslots else 0,
        len(mailslots),
        library.drives[0].address,
        len(library.drives),
        0,
    )
    return page


def mode_header(body, block_descriptor=b'', device_specific=0):
    return bytes([len(body) + len(block_descriptor) + 3, 0, device_specific, len(block_descriptor)]) + (
        block_descriptor + body
    )


def allocation(data, length):
    return data[:length]


# --- the medium changer -----------------------------------------------------------------------


def elements_of_type(library, element_type):
    transport = [('transport', TRANSPORT_ADDRESS)]
    storage = [('slot', slot) for slot in library.slots if not slot.import_export]
    mailslots = [('slot', slot) for slot in library.slots if slot.import_export]
    drives = [('drive', drive) for drive in library.drives]
    by_type = {TRANSPORT: transport, STORAGE: storage, IMPORT_EXPORT: mailslots, DATA_TRANSFER: drives}
    if element_type == ALL_ELEMENTS:
        return [(code, by_type[code]) for code in (TRANSPORT, STORAGE, IMPORT_EXPORT, DATA_TRANSFER)]
    if element_type not in by_type:
        raise illegal(INVALID_FIELD_IN_CDB)
    return [(element_type, by_type[element_type])]


def address_of(kind, element):
    return element if kind == 'transport' else element.address


def element_descriptor(library, kind, element, element_type, volume_tags):
    address = address_of(kind, element)
    descriptor = bytearray(12)
    struct.pack_into('>H', descriptor, 0, address)
    tape = None
    if kind != 'transport' and element.tape is not None:
        tape = library.tapes[element.tape]
    flags = 0x01 if tape else 0x00  # FULL
    if element_type == IMPORT_EXPORT:
        flags |= 0x02 | 0x08 | 0x10 | 0x20  # ImpExp, Access, ExEnab, InEnab
    elif element_type in (STORAGE, DATA_TRANSFER):
        flags |= 0x08  # Access
    descriptor[2] = flags
    if kind == 'drive':
        descriptor[6] = 0x30  # ID Valid, LU Valid, LUN 0
        descriptor[7] = element.index
        if tape is not None and element.source_slot is not None:
            descriptor[9] = 0x80  # SValid: the source storage element address is given
            struct.pack_into('>H', descriptor, 10, library.slots[element.source_slot - 1].address)
    if volume_tags:
        descriptor += volume_tag(tape.barcode if tape else None)
    return bytes(descriptor)


def read_element_status(library, cdb):
    element_type = cdb[1] & 0x0F
    volume_tags = bool(cdb[1] & 0x10)
    start, count = struct.unpack('>HH', cdb[2:6])
    length = int.from_bytes(cdb[7:10], 'big')
    pages = []
    first = None
    total = 0
    for code, elements in elements_of_type(library, element_type):
        chosen = [(kind, element) for kind, element in elements if address_of(kind, element) >= start]
        chosen.sort(key=lambda item: address_of(*item))
        chosen = chosen[: max(count - total, 0)]
        if not chosen:
            continue
        descriptors = [element_descriptor(library, kind, element, code, volume_tags) for kind, element in chosen]
        size = len(descriptors[0])
        body = b''.join(descriptors)
        header = bytes([code, 0x80 if volume_tags else 0x00]) + struct.pack('>H', size) + b'\0'
        header += len(body).to_bytes(3, 'big')
        pages.append(header + body)
        total += len(chosen)
        address = address_of(*chosen[0])
        first = address if first is None else min(first, address)
    if not pages:
        raise illegal(INVALID_ELEMENT_ADDRESS)
    report = b''.join(pages)
    header = struct.pack('>HH', first, total) + b'\0' + len(report).to_bytes(3, 'big')
    return allocation(header + report, length)


def move_medium(library, cdb, is_drive_held):
    _transport, source_address, destination_address = struct.unpack('>HHH', cdb[2:8])
    try:
        source = library.element(source_address)
        library.element(destination_address)
    except LibraryError:
        raise illegal(INVALID_ELEMENT_ADDRESS) from None
    # An injected fault answers the next move whatever it asks (Library.move consumes it); otherwise a
    # drive that a process holds keeps its tape, as PREVENT MEDIUM REMOVAL from ltfs does.
    faulted = bool(library.mtx_faults)
    if not faulted and isinstance(source, Drive) and source.tape is not None and is_drive_held(library, source):
        raise illegal(REMOVAL_PREVENTED_BY_DRIVE)
    try:
        library.move(source_address, destination_address)
    except SenseError as error:
        raise Check(error.sense_key, error.asc, error.ascq) from None
    place_cartridges(library)


def inquiry(cdb, serial, standard):
    """INQUIRY: the standard data, or with EVPD the supported pages (00h) or the unit serial number (80h)."""
    length = int.from_bytes(cdb[3:5], 'big')
    if not cdb[1] & 0x01:
        return allocation(standard, length)
    if cdb[2] == 0x00:
        return allocation(supported_pages([0x00, 0x80]), length)
    if cdb[2] == 0x80:
        return allocation(serial_page(serial), length)
    raise illegal(INVALID_FIELD_IN_CDB)


def changer_command(library, cdb, is_drive_held=drive_held):
    """One CDB for the medium changer; returns the data-in bytes or raises Check."""
    opcode = cdb[0]
    if opcode == TEST_UNIT_READY:
        return b''
    if opcode == INQUIRY:
        return inquiry(cdb, CHANGER_SERIAL, inquiry_data(0x08, CHANGER_VENDOR, CHANGER_PRODUCT, CHANGER_REVISION))
    if opcode == MODE_SENSE_6:
        page = cdb[2] & 0x3F
        if page not in (ELEMENT_ADDRESS_PAGE, 0x3F):
            raise illegal(INVALID_FIELD_IN_CDB)
        return allocation(mode_header(element_address_page(library)), cdb[4])
    if opcode == READ_ELEMENT_STATUS:
        return read_element_status(library, cdb)
    if opcode == MOVE_MEDIUM:
        move_medium(library, cdb, is_drive_held)
        return b''
    if opcode in (INITIALIZE_ELEMENT_STATUS, PREVENT_ALLOW_MEDIUM_REMOVAL):
        return b''
    raise illegal(INVALID_OPCODE)


# --- a tape drive -----------------------------------------------------------------------------

TAPE_ALERT_FLAGS = 64


def tape_alert_page():
    """LOG SENSE page 2Eh: 64 TapeAlert flags, all clear."""
    body = b''.join(struct.pack('>HBBB', flag, 0x03, 1, 0) for flag in range(1, TAPE_ALERT_FLAGS + 1))
    return bytes([TAPE_ALERT_PAGE, 0]) + struct.pack('>H', len(body)) + body


def drive_command(library, drive, cdb):
    """One CDB for a tape drive (what tapeinfo sends); returns the data-in bytes or raises Check."""
    opcode = cdb[0]
    tape = library.tapes[drive.tape] if drive.tape else None
    if opcode == INQUIRY:
        return inquiry(cdb, drive.serial, inquiry_data(0x01, VENDOR, PRODUCT, REVISION))
    if opcode == TEST_UNIT_READY:
        if tape is None:
            raise Check(NOT_READY, *MEDIUM_NOT_PRESENT)
        return b''
    if opcode == READ_BLOCK_LIMITS:
        return bytes([0]) + (8388608).to_bytes(3, 'big') + struct.pack('>H', 1)
    if opcode == LOG_SENSE:
        page = cdb[2] & 0x3F
        if page != TAPE_ALERT_PAGE:
            raise illegal(INVALID_FIELD_IN_CDB)
        return allocation(tape_alert_page(), int.from_bytes(cdb[7:9], 'big'))
    if opcode == MODE_SENSE_6:
        if tape is None:
            raise Check(NOT_READY, *MEDIUM_NOT_PRESENT)
        density = DENSITY_CODES.get((tape.barcode or '')[-2:], DEFAULT_DENSITY)
        descriptor = bytes([density, 0, 0, 0, 0, 0, 0, 0])
        page = cdb[2] & 0x3F
        if page == 0x0F:  # data compression: enabled and capable, algorithm FFh
            body = bytes([0x0F, 0x0E, 0xC0, 0x80, 0, 0, 0, 0xFF, 0, 0, 0, 0xFF, 0, 0, 0, 0])
        elif page == 0x10:  # device configuration: no early warning size, nothing else set
            body = bytes([0x10, 0x0E]) + bytes(14)
        elif page == 0x11:  # medium partition: an LTFS volume has two partitions (index and data)
            partitions = 2 if cartridge.formatted(tapes_folder(library.root) / tape.id) else 1
            sizes = b''.join(struct.pack('>H', 0) for _ in range(partitions))
            body = bytes([0x11, 6 + len(sizes), 3, partitions - 1, 0x00, 0x03, 0x09, 0]) + sizes
        elif page == 0x00:
            body = b''
        else:
            raise illegal(INVALID_FIELD_IN_CDB)
        return allocation(mode_header(body, descriptor, device_specific=0x10), cdb[4])
    if opcode == READ_POSITION:
        if tape is None:
            raise Check(NOT_READY, *MEDIUM_NOT_PRESENT)
        data = bytearray(20)
        data[0] = 0x80  # BOP: at the beginning of partition 0
        return bytes(data)
    if opcode == PREVENT_ALLOW_MEDIUM_REMOVAL:
        return b''
    raise illegal(INVALID_OPCODE)


# --- one opened device ------------------------------------------------------------------------


class Device:
    """A device path as a process opened it: the sense of its last failed command (for REQUEST
    SENSE) and which element it is; each command reads and saves the library under its lock."""

    def __init__(self, root, kind, is_drive_held=drive_held):
        self.root = root
        self.kind = kind
        self.is_drive_held = is_drive_held
        self.last_sense = fixed_sense(NO_SENSE)
        if kind == 'changer':
            self.drive_index = None
        elif kind.startswith('drive:') and kind[6:].isdigit():
            self.drive_index = int(kind[6:])
        else:
            raise LibraryError(f'device kind {kind!r}: changer or drive:N')

    def execute(self, cdb, data_out=b''):
        cdb = bytes(cdb)
        if not cdb:
            return self._fail(illegal(INVALID_OPCODE))
        if cdb[0] == REQUEST_SENSE:
            sense, self.last_sense = self.last_sense, fixed_sense(NO_SENSE)
            return Reply(data=sense[: cdb[4]])
        failure = None
        with open_library(self.root) as library:
            # A refused command still saves the library: a consumed fault stays consumed.
            try:
                if self.drive_index is None:
                    data = changer_command(library, cdb, self.is_drive_held)
                elif self.drive_index >= len(library.drives):
                    raise Check(NOT_READY, 0x04, 0x00)
                else:
                    data = drive_command(library, library.drives[self.drive_index], cdb)
            except Check as check:
                failure = check
        if failure is not None:
            return self._fail(failure)
        return Reply(data=data)

    def _fail(self, check):
        self.last_sense = check.sense
        return Reply(status=CHECK_CONDITION, sense=check.sense)


def read_exactly(stream, size):
    data = b''
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve(device, stdin, stdout):
    """Answer requests from the shim until it closes the device (end of input)."""
    while True:
        header = read_exactly(stdin, 12)
        if header is None:
            return
        cdb_length, direction, transfer_length = struct.unpack('=Iii', header)
        cdb = read_exactly(stdin, cdb_length)
        data_out = read_exactly(stdin, transfer_length) if direction == -2 and transfer_length > 0 else b''
        if cdb is None or data_out is None:
            return
        reply = device.execute(cdb, data_out)
        data = reply.data[: max(transfer_length, 0)] if direction == -3 else b''
        stdout.write(struct.pack('=BBI', reply.status, len(reply.sense), len(data)) + reply.sense + data)
        stdout.flush()


def main(argv=None):
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 3 or arguments[0] != 'serve':
        sys.stderr.write('usage: python -m sim.tapelib.scsi.model serve DEVICE changer|drive:N\n')
        return 2
    _, path, kind = arguments
    root = os.environ.get('TAPELIB_SCSI_LIBRARY') or os.path.dirname(os.path.dirname(os.path.abspath(path)))
    try:
        device = Device(root, kind)
    except LibraryError as error:
        sys.stderr.write(f'sim.tapelib.scsi.model: {error}\n')
        return 2
    serve(device, sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == '__main__':
    sys.exit(main())
