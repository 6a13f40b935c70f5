"""pytarchive.library: `mtx status` parsing and the Changer, against a scripted mtx and the virtual library."""

import json
import os
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytarchive.library import Changer, DriveSlot, LibraryStatus, MtxError, MtxParseError, Slot, Tape, parse_status
from tests.pytarchive.library.virtual_library import VirtualLibrary

TAG_WIDTH = 36  # mtx pads volume tags with blanks to 36 characters


def padded(tag):
    return tag.ljust(TAG_WIDTH)


def empty_slots(first, last, import_export=False):
    kind = ' IMPORT/EXPORT' if import_export else ''
    return ''.join(f'      Storage Element {n}{kind}:Empty\n' for n in range(first, last + 1))


# The reference's LTO-9 library, completed to its 24 slots, tags padded as mtx prints them.
LTO9 = (
    '  Storage Changer /dev/sch0:1 Drives, 24 Slots ( 0 Import/Export )\n'
    f'Data Transfer Element 0:Full (Storage Element 24 Loaded):VolumeTag = {padded("AAK787L9")}\n'
    f'      Storage Element 1:Full :VolumeTag={padded("AAK788L9")}\n'
    f'      Storage Element 2:Full :VolumeTag={padded("CLN670L1")}\n'
    '      Storage Element 3:Full \n' + empty_slots(4, 24)
)

# "2 Drives, 38 Slots ( 36 Import/Export )": the import/export elements are listed among the slots.
IMPORT_EXPORT_LIBRARY = (
    '  Storage Changer /dev/sg5:2 Drives, 38 Slots ( 36 Import/Export )\n'
    'Data Transfer Element 0:Empty\n'
    'Data Transfer Element 1:Full (Unknown Storage Element Loaded):VolumeTag = UN0007L3\n'
    '      Storage Element 1:Full :VolumeTag=UN0100L3\n'
    '      Storage Element 2:Empty\n'
    '      Storage Element 3 IMPORT/EXPORT:Full :VolumeTag=UN0101L3\n'
    '      Storage Element 4 IMPORT/EXPORT:Empty\n'
    '      Storage Element 5 IMPORT/EXPORT:Empty\n'
    '      Storage Element 6 IMPORT/EXPORT:Full \n' + empty_slots(7, 38, import_export=True)
)


class TestParseRealOutput:
    def test_lto9_library(self):
        status = parse_status(LTO9)
        assert status.changer == '/dev/sch0'
        assert status.drives == (DriveSlot(0, True, 24, 'AAK787L9'),)
        assert status.slots[:4] == (
            Slot(1, True, 'AAK788L9'),
            Slot(2, True, 'CLN670L1'),
            Slot(3, True, None),
            Slot(4, False, None),
        )
        assert [slot.number for slot in status.slots] == list(range(1, 25))
        assert not any(slot.full for slot in status.slots[3:])
        assert status.import_export_count == 0

    def test_tapes_lists_barcoded_tapes_with_home_slots_and_marks_cleaning(self):
        tapes = parse_status(LTO9).tapes()
        assert tapes == (Tape('AAK788L9', 1), Tape('CLN670L1', 2), Tape('AAK787L9', 24, drive=0))
        assert [tape.cleaning for tape in tapes] == [False, True, False]

    def test_import_export_library_and_drive_from_unknown_element(self):
        status = parse_status(IMPORT_EXPORT_LIBRARY)
        assert status.changer == '/dev/sg5'
        assert status.drives == (DriveSlot(0, False), DriveSlot(1, True, None, 'UN0007L3'))
        assert len(status.slots) == 38 and status.import_export_count == 36
        assert status.slot(3) == Slot(3, True, 'UN0101L3', import_export=True)
        assert status.slot(6) == Slot(6, True, None, import_export=True)
        assert status.slot(7) == Slot(7, False, None, import_export=True)
        assert [slot.import_export for slot in status.slots].count(True) == 36
        assert status.tapes()[-1] == Tape('UN0007L3', None, drive=1)

    def test_alternate_volume_tags_and_padding_everywhere(self):
        text = (
            '  Storage Changer /dev/changer:1 Drives, 2 Slots ( 0 Import/Export )\n'
            f'Data Transfer Element 0:Full (Storage Element 2 Loaded):VolumeTag = {padded("TPN001L9")}'
            f':AlternateVolumeTag = {padded("ALT1")}\n'
            f'      Storage Element 1:Full :VolumeTag={padded("TPN002L9")}:AlternateVolumeTag={padded("ALT2")}\n'
            '      Storage Element 2:Empty\n'
        )
        status = parse_status(text)
        assert status.drives[0] == DriveSlot(0, True, 2, 'TPN001L9', 'ALT1')
        assert status.slots[0] == Slot(1, True, 'TPN002L9', False, 'ALT2')

    def test_missing_and_blank_barcodes(self):
        text = (
            '  Storage Changer /dev/sch0:1 Drives, 3 Slots ( 0 Import/Export )\n'
            'Data Transfer Element 0:Full (Storage Element 3 Loaded)\n'
            f'      Storage Element 1:Full :VolumeTag={" " * TAG_WIDTH}\n'
            '      Storage Element 2:Full\n'  # "Full " with its trailing blank stripped by a copy-paste
            '      Storage Element 3:Empty\n'
        )
        status = parse_status(text)
        assert status.drives[0] == DriveSlot(0, True, 3, None)
        assert status.slots[:2] == (Slot(1, True, None), Slot(2, True, None))
        assert status.tapes() == ()

    def test_empty_library_and_crlf_line_ends(self):
        text = (
            '  Storage Changer /dev/sch0:1 Drives, 2 Slots ( 0 Import/Export )\r\n'
            'Data Transfer Element 0:Empty\r\n      Storage Element 1:Empty\r\n      Storage Element 2:Empty\r\n'
        )
        status = parse_status(text)
        assert not status.drives[0].full and not any(slot.full for slot in status.slots)

    def test_holders_finds_tapes_in_slots_and_drives_case_insensitively(self):
        status = parse_status(LTO9)
        assert status.holders('aak788l9') == (Slot(1, True, 'AAK788L9'),)
        assert status.holders('AAK787L9') == (DriveSlot(0, True, 24, 'AAK787L9'),)
        assert status.holders('NOPE01L9') == ()


HEADER = '  Storage Changer /dev/sch0:1 Drives, 2 Slots ( 0 Import/Export )\n'


@pytest.mark.parametrize(
    'text, shown',
    [
        ('', 'printed no "Storage Changer" header'),
        ('mtx: cannot open SCSI device\n', "line 1 (expected the '  Storage Changer"),
        (
            HEADER + 'Data Transfer Element 0:Empty\n      Storage Element 1:Empty\n',
            'header announces 2 slots but lists 1',
        ),
        (
            HEADER + 'Data Transfer Element 0:Empty\n      Storage Element 1:Empty\n      Storage Element 3:Empty\n',
            'line 4 (Storage Element 3 where mtx lists Storage Element 2 next)',
        ),
        (
            HEADER + '      Storage Element 1:Empty\nData Transfer Element 0:Empty\n      Storage Element 2:Empty\n',
            'line 3 (a drive listed after the storage elements)',
        ),
        (
            HEADER + 'Data Transfer Element 0:Loaded\n',
            'line 2 (expected a "Data Transfer Element N:..." line): \'Data Transfer Element 0:Loaded\'',
        ),
        (
            HEADER + 'Data Transfer Element 0:Full (Storage Element 2 Loaded) TPN001L9\n',
            'optional ":VolumeTag" and ":AlternateVolumeTag" fields',
        ),
        (HEADER + 'Data Transfer Element 0:Empty\n      Storage Element 1:Half\n', 'line 3'),
        (
            HEADER + 'Data Transfer Element 0:Empty\nWarning: something\n',
            "line 3 (not a line of mtx status): 'Warning: something'",
        ),
        (HEADER + HEADER, 'line 2'),
        ('  Storage Changer /dev/sch0:1 Drives, 99999999999999999999 Slots ( 0 Import/Export )\n', 'line 1'),
        (
            HEADER
            + 'Data Transfer Element 0:Empty\n      Storage Element 1:Full :VolumeTag=\x00\x1b[2J'
            + 'x' * 500
            + '\n      Storage Element 2:Empty\nnoise\n',
            "'noise'",
        ),
    ],
)
def test_unparseable_output_is_one_clear_line_quoting_it(text, shown):
    with pytest.raises(MtxParseError) as caught:
        parse_status(text)
    message = str(caught.value)
    assert shown in message
    assert '\n' not in message and len(message) < 400


# -- property tests ----------------------------------------------------------------------------------


def render(status, pad):
    """`mtx status` output for a LibraryStatus, formatted as mtx.c prints it."""
    tag = padded if pad else str
    import_export = sum(slot.import_export for slot in status.slots)
    lines = [
        f'  Storage Changer {status.changer}:{len(status.drives)} Drives, {len(status.slots)} Slots '
        f'( {import_export} Import/Export )'
    ]
    for drive in status.drives:
        if not drive.full:
            lines.append(f'Data Transfer Element {drive.index}:Empty')
            continue
        source = (
            f'Storage Element {drive.source_slot} Loaded'
            if drive.source_slot is not None
            else 'Unknown Storage Element Loaded'
        )
        line = f'Data Transfer Element {drive.index}:Full ({source})'
        if drive.barcode:
            line += f':VolumeTag = {tag(drive.barcode)}'
        if drive.alternate_barcode:
            line += f':AlternateVolumeTag = {tag(drive.alternate_barcode)}'
        lines.append(line)
    for slot in status.slots:
        kind = ' IMPORT/EXPORT' if slot.import_export else ''
        line = f'      Storage Element {slot.number}{kind}:{"Full " if slot.full else "Empty"}'
        if slot.barcode:
            line += f':VolumeTag={tag(slot.barcode)}'
        if slot.alternate_barcode:
            line += f':AlternateVolumeTag={tag(slot.alternate_barcode)}'
        lines.append(line)
    return '\n'.join(lines) + '\n'


barcodes = st.none() | st.text(alphabet='ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', min_size=1, max_size=12)


@st.composite
def library_states(draw):
    slot_count = draw(st.integers(0, 40))
    slots = []
    for number in range(1, slot_count + 1):
        full = draw(st.booleans())
        slots.append(
            Slot(number, full, draw(barcodes) if full else None, draw(st.booleans()), draw(barcodes) if full else None)
        )
    drives = []
    for index in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            drives.append(DriveSlot(index, True, draw(st.none() | st.integers(1, 999)), draw(barcodes), draw(barcodes)))
        else:
            drives.append(DriveSlot(index, False))
    changer = draw(st.sampled_from(['/dev/sch0', '/dev/sg12', 'DIR/dev/sch0', '/dev/tape/by-id/scsi-3500:x']))
    return LibraryStatus(changer, tuple(drives), tuple(slots), sum(slot.import_export for slot in slots))


@given(library_states(), st.booleans())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_rendered_status_parses_back_to_the_same_state(state, pad):
    assert parse_status(render(state, pad)) == state


@given(st.text())
@settings(max_examples=500)
def test_arbitrary_text_never_raises_anything_but_mtx_parse_error(text):
    try:
        parse_status(text)
    except MtxParseError as error:
        assert '\n' not in str(error)


# Fragments of real lines, so that generated garbage gets past the header and into every branch.
FRAGMENTS = [
    '  Storage Changer /dev/sch0:',
    '1 Drives, ',
    '3 Slots ( ',
    '0 Import/Export )',
    'Data Transfer Element ',
    '0',
    '1',
    '2',
    '99999999',
    ':Empty',
    ':Full ',
    'Full (Storage Element ',
    ' Loaded)',
    '(Unknown Storage Element Loaded)',
    ':VolumeTag = ',
    ':VolumeTag=',
    ':AlternateVolumeTag = ',
    ':AlternateVolumeTag=',
    '      Storage Element ',
    ' IMPORT/EXPORT',
    'TPN001L9',
    '   ',
    '\n',
    '\r',
    ':',
    '\x00',
    'é',
    '٣',
]


@given(st.booleans(), st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=5), max_size=60))
@settings(max_examples=1000)
def test_mtx_like_garbage_never_raises_anything_but_mtx_parse_error(with_header, pieces):
    text = (HEADER if with_header else '') + ''.join(pieces)
    try:
        parse_status(text)
    except MtxParseError as error:
        assert '\n' not in str(error)


# -- Changer against a scripted mtx ------------------------------------------------------------------

# A drive refusing to give up its tape (ASC/ASCQ 53/03), as mtx writes it to stderr (the "Unloading drive 0 ..." part went to stdout).
REMOVAL_PREVENTED_STDERR = textwrap.dedent("""\
    mtx: Request Sense: Long Report=yes
    mtx: Request Sense: Valid Residual=no
    mtx: Request Sense: Error Code=70 (Current)
    mtx: Request Sense: Sense Key=Illegal Request
    mtx: Request Sense: FileMark=no
    mtx: Request Sense: EOM=no
    mtx: Request Sense: ILI=no
    mtx: Request Sense: Additional Sense Code = 53
    mtx: Request Sense: Additional Sense Qualifier = 03
    mtx: Request Sense: BPV=no
    mtx: Request Sense: Error in CDB=no
    mtx: Request Sense: SKSV=no
    mtx: MOVE MEDIUM from Element Address 256 to 1006 Failed
""")

FAKE_MTX = """\
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, 'calls.log'), 'a') as log:
    log.write(' '.join(sys.argv[1:]) + '\\n')
with open(os.path.join(here, 'script.json')) as f:
    script = json.load(f)
verb = sys.argv[3]
steps = script[verb]
step = steps.pop(0) if len(steps) > 1 else steps[0]  # the last answer repeats
with open(os.path.join(here, 'script.json'), 'w') as f:
    json.dump(script, f)
time.sleep(step.get('sleep', 0))
sys.stdout.write(step.get('stdout', ''))
sys.stderr.write(step.get('stderr', ''))
sys.exit(step.get('exit', 0))
"""


class ScriptedMtx:
    """An executable `mtx` that answers each verb with canned output, in order, and logs its calls."""

    def __init__(self, directory):
        self.directory = directory
        self.path = directory / 'mtx'
        self.path.write_text(f'#!{sys.executable}\n' + FAKE_MTX)
        self.path.chmod(0o755)
        self.script = {}

    def answer(self, verb, *steps):
        self.script[verb] = [step if isinstance(step, dict) else {'stdout': step} for step in steps]
        (self.directory / 'script.json').write_text(json.dumps(self.script))

    def calls(self):
        log = self.directory / 'calls.log'
        return log.read_text().splitlines() if log.exists() else []

    def changer(self, timeout=30):
        return Changer([str(self.path)], '/dev/sch0', timeout=timeout)


def status_text(
    drive='Data Transfer Element 0:Empty',
    slots=(('TPN001L9', True), (None, False), ('TPN002L9', True), ('CLN001L1', True), (None, False)),
):
    lines = [f'  Storage Changer /dev/sch0:1 Drives, {len(slots)} Slots ( 0 Import/Export )', drive]
    for number, (barcode, full) in enumerate(slots, start=1):
        state = 'Full ' if full else 'Empty'
        lines.append(f'      Storage Element {number}:{state}' + (f':VolumeTag={padded(barcode)}' if barcode else ''))
    return '\n'.join(lines) + '\n'


BEFORE = status_text()
TPN002_LOADED = status_text(
    drive='Data Transfer Element 0:Full (Storage Element 3 Loaded):VolumeTag = TPN002L9',
    slots=(('TPN001L9', True), (None, False), (None, False), ('CLN001L1', True), (None, False)),
)


@pytest.fixture
def mtx(tmp_path):
    return ScriptedMtx(tmp_path)


class TestChangerLoad:
    def test_loads_by_barcode_from_its_slot_and_checks_the_result(self, mtx):
        mtx.answer('status', BEFORE, TPN002_LOADED)
        mtx.answer('load', 'Loading media from Storage Element 3 into drive 0...done\n')
        assert mtx.changer().load('TPN002L9') == 3
        assert mtx.calls() == ['-f /dev/sch0 status', '-f /dev/sch0 load 3 0', '-f /dev/sch0 status']

    def test_cleaning_tape_is_refused_without_touching_the_library(self, mtx):
        with pytest.raises(MtxError, match='CLN001L1 is a cleaning tape; pytarchive never loads cleaning tapes'):
            mtx.changer().load('CLN001L1')
        assert mtx.calls() == []

    def test_full_drive_is_refused_naming_the_tape_in_it(self, mtx):
        mtx.answer('status', TPN002_LOADED)
        with pytest.raises(MtxError) as caught:
            mtx.changer().load('TPN001L9')
        assert str(caught.value) == (
            'cannot load TPN001L9: drive 0 already holds TPN002L9 (from slot 3); unload it first'
        )
        assert mtx.calls() == ['-f /dev/sch0 status']

    def test_tape_already_in_the_drive_is_not_moved_again(self, mtx):
        mtx.answer('status', TPN002_LOADED)
        assert mtx.changer().load('tpn002l9') == 3
        assert mtx.calls() == ['-f /dev/sch0 status']

    def test_blank_barcode(self, mtx):
        with pytest.raises(MtxError, match='no barcode given: pytarchive loads tapes only by their barcode'):
            mtx.changer().load('  ')
        assert mtx.calls() == []

    def test_unknown_barcode(self, mtx):
        mtx.answer('status', BEFORE)
        with pytest.raises(
            MtxError,
            match='no tape with barcode TPN999L9 in the library at /dev/sch0 '
            r'\(5 slots, 1 drives\)',
        ):
            mtx.changer().load('TPN999L9')

    def test_duplicate_barcode_is_not_guessed(self, mtx):
        mtx.answer('status', status_text(slots=(('TPN001L9', True), ('TPN001L9', True))))
        with pytest.raises(MtxError, match=r'barcode TPN001L9 appears 2 times \(slot 1, slot 2\); refusing to guess'):
            mtx.changer().load('TPN001L9')

    def test_tape_in_another_drive(self, mtx):
        mtx.answer(
            'status',
            '  Storage Changer /dev/sch0:2 Drives, 1 Slots ( 0 Import/Export )\n'
            'Data Transfer Element 0:Empty\n'
            'Data Transfer Element 1:Full (Storage Element 1 Loaded):VolumeTag = TPN001L9\n'
            '      Storage Element 1:Empty\n',
        )
        with pytest.raises(MtxError, match='TPN001L9 is in drive 1; unload it from there first'):
            mtx.changer().load('TPN001L9', drive=0)

    def test_no_such_drive(self, mtx):
        mtx.answer('status', BEFORE)
        with pytest.raises(MtxError, match=r'the library at /dev/sch0 has no drive 2 \(drives 0-0\)'):
            mtx.changer().load('TPN001L9', drive=2)

    def test_mtx_claiming_success_without_loading_is_an_error(self, mtx):
        mtx.answer('status', BEFORE)  # still empty afterwards
        mtx.answer('load', 'Loading media from Storage Element 3 into drive 0...done\n')
        with pytest.raises(MtxError, match='mtx reported loading TPN002L9 from slot 3 but drive 0 now holds nothing'):
            mtx.changer().load('TPN002L9')


class TestChangerUnload:
    def test_goes_back_to_the_home_slot_not_the_first_empty_one(self, mtx):
        mtx.answer('status', TPN002_LOADED, BEFORE)
        mtx.answer('unload', 'Unloading drive 0 into Storage Element 3...done\n')
        assert mtx.changer().unload() == 3
        assert mtx.calls()[1] == '-f /dev/sch0 unload 3 0'  # slot 2 was the first empty one

    def test_empty_drive_needs_nothing(self, mtx):
        mtx.answer('status', BEFORE)
        assert mtx.changer().unload() is None
        assert mtx.calls() == ['-f /dev/sch0 status']

    def test_unknown_home_slot_is_refused_with_what_to_do(self, mtx):
        mtx.answer(
            'status',
            status_text(drive='Data Transfer Element 0:Full (Unknown Storage Element Loaded):VolumeTag = TPN002L9'),
        )
        with pytest.raises(MtxError) as caught:
            mtx.changer().unload()
        assert str(caught.value) == (
            f'cannot unload drive 0 (TPN002L9 (home slot unknown)): neither pytarchive nor the library knows its '
            f'home slot; '
            f'unload it by hand with "{mtx.path} -f /dev/sch0 unload SLOT 0" into a slot you choose'
        )
        assert mtx.calls() == ['-f /dev/sch0 status']

    def test_occupied_home_slot_is_refused(self, mtx):
        mtx.answer(
            'status', status_text(drive='Data Transfer Element 0:Full (Storage Element 1 Loaded):VolumeTag = TPN009L9')
        )
        with pytest.raises(MtxError, match=r'its home slot 1 is occupied by TPN001L9 \(moved there by hand\?\); move'):
            mtx.changer().unload()

    def test_the_slot_the_tape_was_loaded_from_wins_over_what_mtx_reports(self, mtx, caplog):
        # slot 3 is where pytarchive loaded it from; mtx says 2 (the first empty one, as when the library lost track)
        mtx.answer(
            'status',
            status_text(
                drive='Data Transfer Element 0:Full (Storage Element 2 Loaded):VolumeTag = TPN002L9',
                slots=(('TPN001L9', True), (None, False), (None, False), ('CLN001L1', True), (None, False)),
            ),
            BEFORE,
        )
        mtx.answer('unload', 'Unloading drive 0 into Storage Element 3...done\n')
        assert mtx.changer().unload(home_of={'TPN002L9': 3}.get) == 3
        assert mtx.calls()[1] == '-f /dev/sch0 unload 3 0'
        assert 'mtx reports TPN002L9 came from slot 2, but it was loaded from slot 3: unloading it there' in caplog.text


class TestChangerErrors:
    def test_request_sense_is_parsed_quoted_with_the_operator_advice_and_the_state_re_read(self, mtx):
        mtx.answer('status', TPN002_LOADED)
        mtx.answer(
            'unload',
            {'stdout': 'Unloading drive 0 into Storage Element 3...', 'stderr': REMOVAL_PREVENTED_STDERR, 'exit': 1},
        )
        changer = mtx.changer()
        with pytest.raises(MtxError) as caught:
            changer.unload()
        error = caught.value
        assert (error.sense_key, error.asc, error.ascq) == ('Illegal Request', '53', '03')
        assert error.message == 'MOVE MEDIUM from Element Address 256 to 1006 Failed'
        assert error.command == [str(mtx.path), '-f', '/dev/sch0', 'unload', '3', '0']
        assert str(error) == (
            f'{mtx.path} -f /dev/sch0 unload 3 0: MOVE MEDIUM from Element Address 256 to 1006 Failed '
            '(Sense Key=Illegal Request, ASC=53, ASCQ=03); look up ASC/ASCQ 53/03 at '
            'https://www.t10.org/lists/asc-num.htm#ASCD_53; do not power-cycle the library or the host, '
            'it can make it worse'
        )
        # the state is read again after the failure, never assumed
        assert mtx.calls() == ['-f /dev/sch0 status', '-f /dev/sch0 unload 3 0', '-f /dev/sch0 status']
        assert error.status_after == parse_status(TPN002_LOADED) == changer.last_status

    def test_failed_re_read_leaves_the_state_unknown(self, mtx):
        mtx.answer('status', TPN002_LOADED, {'stderr': 'mtx: cannot open SCSI device /dev/sch0\n', 'exit': 1})
        mtx.answer('unload', {'stderr': REMOVAL_PREVENTED_STDERR, 'exit': 1})
        changer = mtx.changer()
        with pytest.raises(MtxError) as caught:
            changer.unload()
        assert caught.value.status_after is None and changer.last_status is None

    def test_plain_mtx_error_without_sense_data(self, mtx):
        mtx.answer('status', {'stderr': '/usr/sbin/mtx: Drive 0 Full (Storage Element 3 loaded)\n', 'exit': 1})
        with pytest.raises(MtxError) as caught:
            mtx.changer().status()
        assert caught.value.sense_key is None and caught.value.asc is None
        assert str(caught.value) == (
            f'{mtx.path} -f /dev/sch0 status: Drive 0 Full (Storage Element 3 loaded); '
            'do not power-cycle the library or the host, it can make it worse'
        )

    def test_missing_mtx(self, tmp_path):
        with pytest.raises(MtxError) as caught:
            Changer([str(tmp_path / 'no-mtx')], '/dev/sch0').status()
        assert str(caught.value) == (
            f'{tmp_path}/no-mtx -f /dev/sch0 status: {tmp_path}/no-mtx not found '
            '(check the command path in the [Device] config)'
        )

    def test_hung_mtx_is_killed_after_the_timeout(self, mtx):
        mtx.answer('status', {'sleep': 30})
        with pytest.raises(MtxError, match=r'status: did not finish within 0.5 s and was killed; do not power-cycle'):
            mtx.changer(timeout=0.5).status()

    def test_unparseable_status_from_the_changer(self, mtx):
        mtx.answer('status', 'mtx 1.3.12 says hello\n')
        with pytest.raises(MtxParseError, match="'mtx 1.3.12 says hello'"):
            mtx.changer().status()


class TestChangerTransfer:
    def test_moves_between_slots(self, mtx):
        after = status_text(
            slots=(('TPN001L9', True), ('TPN002L9', True), (None, False), ('CLN001L1', True), (None, False))
        )
        mtx.answer('status', BEFORE, after)
        mtx.answer('transfer', '')
        mtx.changer().transfer(3, 2)
        assert mtx.calls()[1] == '-f /dev/sch0 transfer 3 2'

    @pytest.mark.parametrize(
        'source, destination, shown',
        [
            (2, 5, 'slot 2 is empty'),
            (1, 3, 'slot 3 already holds TPN002L9'),
            (1, 9, 'the library has no slot 9 (slots 1-5)'),
        ],
    )
    def test_refusals(self, mtx, source, destination, shown):
        mtx.answer('status', BEFORE)
        with pytest.raises(MtxError, match=shown.replace('(', r'\(').replace(')', r'\)')):
            mtx.changer().transfer(source, destination)
        assert len(mtx.calls()) == 1


def test_commands_may_be_given_as_a_single_path(mtx):
    mtx.answer('status', BEFORE)
    assert Changer(str(mtx.path), '/dev/sch0').status() == parse_status(BEFORE)
    assert os.access(mtx.path, os.X_OK)


# -- Changer on the virtual library (sim/tapelib) ------------------------------------------------------


@pytest.fixture
def virtual(tmp_path):
    library = VirtualLibrary(tmp_path / 'library', tapes='TPN001L9,TPN002L9,-,CLN001L1', slots=6, import_export=1)
    yield library
    library.cleanup()


@pytest.mark.root  # the virtual library, as the other tests of it run (its tapes are ext4 images)
class TestChangerOnTheVirtualLibrary:
    def test_its_status_parses(self, virtual):
        status = virtual.changer().status()
        assert status.changer == virtual.device['library']
        assert status.drives == (DriveSlot(0, False),)
        assert status.slots == (
            Slot(1, True, 'TPN001L9'),
            Slot(2, True, 'TPN002L9'),
            Slot(3, True, None),
            Slot(4, True, 'CLN001L1'),
            Slot(5, False),
            Slot(6, False, import_export=True),
        )

    def test_load_by_barcode_and_unload_to_the_home_slot_not_the_first_empty_one(self, virtual):
        changer = virtual.changer()
        assert changer.load('TPN002L9') == 2
        assert changer.last_status.drives[0] == DriveSlot(0, True, 2, 'TPN002L9')
        changer.transfer(1, 5)  # slot 1 is now the first empty slot
        assert changer.unload() == 2
        status = changer.status()
        assert status.slot(2).barcode == 'TPN002L9' and not status.slot(1).full and not status.drives[0].full

    def test_a_tape_put_into_the_home_slot_by_hand_is_never_covered_up_by_the_real_mtx_report(self, virtual):
        changer = virtual.changer()
        assert changer.load('TPN002L9') == 2
        virtual.fault('move', 'TPN001L9', '--to-slot', '2')  # an operator fills the home slot by hand
        # the real mtx now names slot 1, the first empty one, as the drive's source
        assert changer.status().drives[0] == DriveSlot(0, True, 1, 'TPN002L9')
        with pytest.raises(MtxError, match=r'its home slot 2 is occupied by TPN001L9 \(moved there by hand\?\)'):
            changer.unload(home_of={'TPN002L9': 2}.get)
        assert changer.status().drives[0].full  # nothing moved
        virtual.fault('move', 'TPN001L9', '--to-slot', '1')
        assert changer.unload(home_of={'TPN002L9': 2}.get) == 2
        assert changer.status().slot(2).barcode == 'TPN002L9'

    def test_sense_error_is_quoted_and_the_state_re_read(self, virtual):
        virtual.fault('mtx-error', '--sense-key', 'Illegal Request', '--asc', '53', '--ascq', '03', '--count', '1')
        changer = virtual.changer()
        with pytest.raises(MtxError) as caught:
            changer.load('TPN001L9')
        error = caught.value
        assert (error.sense_key, error.asc, error.ascq) == ('Illegal Request', '53', '03')
        assert str(error).startswith(
            f'{virtual.device["mtx"]} -f {virtual.device["library"]} load 1 0: MOVE MEDIUM from Element Address '
        )
        assert str(error).endswith(
            '(Sense Key=Illegal Request, ASC=53, ASCQ=03); look up ASC/ASCQ 53/03 at '
            'https://www.t10.org/lists/asc-num.htm#ASCD_53; do not power-cycle the library '
            'or the host, it can make it worse'
        )
        assert error.status_after.slot(1).barcode == 'TPN001L9' and not error.status_after.drives[0].full
        assert changer.load('TPN001L9') == 1  # the fault was for one move

    def test_full_drive_is_refused_naming_the_loaded_tape(self, virtual):
        changer = virtual.changer()
        changer.load('TPN001L9')
        with pytest.raises(
            MtxError,
            match=r'^cannot load TPN002L9: drive 0 already holds TPN001L9 \(from slot 1\); '
            'unload it first$',
        ):
            changer.load('TPN002L9')
        assert changer.status().slot(2).full

    def test_cleaning_tape_is_refused_and_stays_in_its_slot(self, virtual):
        changer = virtual.changer()
        with pytest.raises(MtxError, match='CLN001L1 is a cleaning tape'):
            changer.load('CLN001L1')
        assert changer.status().slot(4).barcode == 'CLN001L1'

    def test_transfer_to_the_import_export_slot_and_back(self, virtual):
        changer = virtual.changer()
        changer.transfer(2, 6)
        assert changer.status().slot(6) == Slot(6, True, 'TPN002L9', import_export=True)
        changer.transfer(6, 2)
        assert changer.status().slot(2) == Slot(2, True, 'TPN002L9')
