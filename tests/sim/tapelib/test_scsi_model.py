"""The virtual library as SCSI devices (sim/tapelib/scsi/model.py): CDB bytes in, status, sense and
data-in out, on a library made in the test's directory; no subprocess, no shim."""

import os
import struct

import pytest

from sim.tapelib import builder
from sim.tapelib.model import MtxFault
from sim.tapelib.scsi import model
from sim.tapelib.store import open_library

PAD = b' ' * 28  # an 8-character barcode padded to the 36-byte primary volume tag


@pytest.fixture
def root(tmp_path):
    root = tmp_path / 'library'
    builder.create(
        root, slots=6, drives=1, tapes=['TPN001L9', 'TPN002L9', None, 'CLN001L1'], capacity=160 << 20, import_export=1
    )
    return str(root)


def not_held(library, drive):
    return False


def changer(root, held=not_held):
    return model.Device(root, 'changer', is_drive_held=held)


def sense_of(reply):
    assert reply.status == model.CHECK_CONDITION
    assert reply.sense[0] == 0x70 and reply.sense[7] == 10  # fixed format, current error
    return reply.sense[2] & 0x0F, reply.sense[12], reply.sense[13]


def move(device, source, destination):
    return device.execute(bytes([model.MOVE_MEDIUM, 0]) + struct.pack('>HHH', 0, source, destination) + bytes(4))


def element_status(device, element_type, start=0, count=0xFFFF, volume_tags=True):
    cdb = bytes([model.READ_ELEMENT_STATUS, element_type | (0x10 if volume_tags else 0)])
    cdb += struct.pack('>HH', start, count) + b'\0' + (0xFFFF).to_bytes(3, 'big') + b'\0\0'
    reply = device.execute(cdb)
    assert reply.status == model.GOOD, reply.sense
    return reply.data


def descriptors(data):
    """(element type, [(address, full, svalid, source, tag)]) for each page of a READ ELEMENT STATUS."""
    first, count = struct.unpack('>HH', data[:4])
    assert int.from_bytes(data[5:8], 'big') == len(data) - 8
    pages, offset = [], 8
    while offset < len(data):
        code, flags, size = data[offset], data[offset + 1], struct.unpack('>H', data[offset + 2 : offset + 4])[0]
        length = int.from_bytes(data[offset + 5 : offset + 8], 'big')
        body = data[offset + 8 : offset + 8 + length]
        elements = []
        for start in range(0, length, size):
            raw = body[start : start + size]
            tag = raw[12:48] if flags & 0x80 else None
            elements.append(
                (
                    struct.unpack('>H', raw[:2])[0],
                    bool(raw[2] & 1),
                    bool(raw[9] & 0x80),
                    struct.unpack('>H', raw[10:12])[0],
                    tag,
                )
            )
        pages.append((code, elements))
        offset += 8 + length
    assert sum(len(elements) for _, elements in pages) == count
    return pages


def test_inquiry_of_the_changer_and_of_a_drive_with_its_serial(root):
    data = changer(root).execute(bytes([model.INQUIRY, 0, 0, 0, 56, 0])).data
    assert data[0] == 0x08 and data[8:16] == b'IBM     ' and data[16:32] == b'3573-TL         '
    drive = model.Device(root, 'drive:0')
    data = drive.execute(bytes([model.INQUIRY, 0, 0, 0, 56, 0])).data
    assert data[0] == 0x01 and data[16:32] == b'ULTRIUM-HH9     ' and len(data) == 36
    serial = drive.execute(bytes([model.INQUIRY, 1, 0x80, 0, 30, 0])).data
    assert serial == bytes([1, 0x80, 0, 10]) + b'10WT000000'
    assert drive.execute(bytes([model.INQUIRY, 1, 0x80, 0, 6, 0])).data == serial[:6]  # allocation length


def test_mode_sense_element_address_assignment_matches_the_stand_in_addresses(root):
    data = changer(root).execute(bytes([model.MODE_SENSE_6, 0x08, 0x1D, 0, 136, 0])).data
    assert data[0] == len(data) - 1 and data[3] == 0  # no block descriptor
    page = struct.unpack('>BBHHHHHHHHH', data[4:24])
    # transport 0 (1), storage 4096 (5), import/export 16 (1), drives 256 (1)
    assert page == (0x1D, 0x12, 0, 1, 4096, 5, 16, 1, 256, 1, 0)


def test_read_element_status_with_blank_padded_volume_tags(root):
    device = changer(root)
    [(code, slots)] = descriptors(element_status(device, model.STORAGE, start=4096, count=5))
    assert code == model.STORAGE
    assert slots[0] == (4096, True, False, 0, b'TPN001L9' + PAD)
    assert slots[2] == (4098, True, False, 0, bytes(36))  # no label: an all-zero tag
    assert slots[4] == (4100, False, False, 0, bytes(36))
    [(_, mailslots)] = descriptors(element_status(device, model.IMPORT_EXPORT, start=16, count=1))
    assert mailslots == [(16, False, False, 0, bytes(36))]
    raw = element_status(device, model.IMPORT_EXPORT, start=16, count=1)
    assert raw[16 + 2] & 0x02  # ImpExp
    everything = descriptors(element_status(device, model.ALL_ELEMENTS))
    assert [code for code, _ in everything] == [1, 2, 3, 4]
    no_tags = descriptors(element_status(device, model.DATA_TRANSFER, start=256, count=1, volume_tags=False))
    assert no_tags == [(4, [(256, False, False, 0, None)])]


def test_move_medium_persists_and_the_drive_names_its_source_slot(root):
    assert move(changer(root), 4097, 256).status == model.GOOD
    [(_, [drive])] = descriptors(element_status(changer(root), model.DATA_TRANSFER, start=256, count=1))
    assert drive == (256, True, True, 4097, b'TPN002L9' + PAD)
    with open_library(root) as library:
        assert library.drives[0].tape == 'TPN002L9' and library.drives[0].source_slot == 2
    assert move(changer(root), 256, 4100).status == model.GOOD
    with open_library(root) as library:
        assert library.slots[4].tape == 'TPN002L9' and library.drives[0].tape is None


@pytest.mark.parametrize(
    'source, destination, expected',
    [
        (4100, 256, (5, 0x3B, 0x0E)),  # source empty
        (4096, 4097, (5, 0x3B, 0x0D)),  # destination full
        (4096, 9999, (5, 0x21, 0x01)),  # no such element
    ],
)
def test_move_medium_refusals_are_illegal_request_with_their_codes(root, source, destination, expected):
    device = changer(root)
    assert sense_of(move(device, source, destination)) == expected
    request_sense = device.execute(bytes([model.REQUEST_SENSE, 0, 0, 0, 18, 0]))
    assert request_sense.status == model.GOOD and request_sense.data[2] == 5 and request_sense.data[12] == expected[1]
    with open_library(root) as library:
        assert [slot.tape for slot in library.slots[:2]] == ['TPN001L9', 'TPN002L9']


def test_a_held_drive_refuses_removal_with_53_03(root):
    assert move(changer(root), 4096, 256).status == model.GOOD
    held = changer(root, held=lambda library, drive: drive.index == 0)
    assert sense_of(move(held, 256, 4096)) == (5, 0x53, 0x03)
    assert move(changer(root), 256, 4096).status == model.GOOD


def test_the_hold_hook_reads_proc_fds(tmp_path):
    path = tmp_path / 'Drive_10WT000000.ULTRIUM-HH9'
    path.write_text('')
    assert model.processes_holding(path, exclude=()) == []
    with open(path):
        assert model.processes_holding(path, exclude=()) == [os.getpid()]
        assert model.processes_holding(path) == []  # the model never counts itself


def test_an_injected_fault_answers_the_next_moves_with_its_sense(root):
    with open_library(root) as library:
        library.mtx_faults.append(MtxFault(4, 0x40, 0x01, remaining=2))
    device = changer(root)
    assert sense_of(move(device, 4096, 256)) == (4, 0x40, 0x01)
    assert sense_of(move(device, 4096, 256)) == (4, 0x40, 0x01)
    assert move(device, 4096, 256).status == model.GOOD


def test_a_drive_without_tape_is_not_ready_and_with_tape_reports_position_and_density(root):
    drive = model.Device(root, 'drive:0')
    assert sense_of(drive.execute(bytes(6))) == (2, 0x3A, 0x00)
    assert drive.execute(bytes([model.READ_BLOCK_LIMITS, 0, 0, 0, 0, 0])).data == bytes([0, 0x80, 0, 0, 0, 1])
    log = drive.execute(bytes([model.LOG_SENSE, 0, 0x2E, 0, 0, 0, 0, 8, 0, 0])).data
    assert log[0] == 0x2E and struct.unpack('>H', log[2:4])[0] == 64 * 5
    assert all(log[4 + 5 * flag + 4] == 0 for flag in range(64))  # every TapeAlert flag clear
    assert move(changer(root), 4096, 256).status == model.GOOD
    assert drive.execute(bytes(6)).status == model.GOOD
    assert drive.execute(bytes([model.READ_POSITION, *bytes(9)])).data[0] & 0x80  # BOP
    mode = drive.execute(bytes([model.MODE_SENSE_6, 0, 0x0F, 0, 255, 0])).data
    assert mode[3] == 8 and mode[4] == 0x60  # block descriptor with the LTO-9 density code


def test_unknown_opcodes_are_invalid_command_operation_code(root):
    assert sense_of(changer(root).execute(bytes([0xFF, 0, 0, 0, 0, 0]))) == (5, 0x20, 0x00)
