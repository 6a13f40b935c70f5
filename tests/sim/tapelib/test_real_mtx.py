"""Debian's real mtx and tapeinfo (mtx 1.3.12) on the virtual library: the LD_PRELOAD shim
(sim/tapelib/scsi/shim.c) hands their SCSI commands to the Python model (sim/tapelib/scsi/model.py).
The library is made by `python -m sim.tapelib init` in the test's directory; nothing needs root."""

import os
import subprocess
import sys

import pytest

from pytarchive.library.status import parse_status
from sim.tapelib.model import MtxFault
from sim.tapelib.store import open_library
from tests.sim.tapelib.conftest import PROJECT, admin, tag

MTX = '/usr/sbin/mtx'
TAPEINFO = '/usr/sbin/tapeinfo'
SHIM = os.path.join(PROJECT, 'build', 'tapelib', 'libscsishim.so')


@pytest.fixture(scope='module')
def shim():
    assert os.access(MTX, os.X_OK) and os.access(TAPEINFO, os.X_OK), 'no real mtx: run make system-packages'
    # make keeps the shim current with its source (make test builds it before the tests)
    subprocess.run(['make', '-s', 'build/tapelib/libscsishim.so'], cwd=PROJECT, check=True, timeout=60)
    return SHIM


class Rig:
    def __init__(self, root, shim):
        self.root = str(root)
        self.changer = f'{self.root}/dev/sch0'
        self.drive = f'{self.root}/drives/Drive_10WT000000.ULTRIUM-HH9'
        self.env = {
            **os.environ,
            'LD_PRELOAD': shim,
            'TAPELIB_SCSI_DEVICES': f'{self.changer}=changer,{self.drive}=drive:0',
            'TAPELIB_SCSI_PYTHON': sys.executable,
            'PYTHONPATH': PROJECT,
        }
        self.env.pop('TAPELIB_SCSI_TRACE', None)

    def run(self, *command):
        return subprocess.run([*map(str, command)], capture_output=True, text=True, env=self.env, timeout=30)

    def mtx(self, *arguments):
        return self.run(MTX, '-f', self.changer, *arguments)

    def status(self):
        result = self.mtx('status')
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture
def rig(tmp_path, shim):
    root = tmp_path / 'library'
    admin('init', root, '--slots', 6, '--drives', 1, '--tapes', 'TPN001L9,TPN002L9,-,CLN001L1', '--capacity', '160M')
    return Rig(root, shim)


def test_status_of_the_real_mtx(rig):
    assert rig.status() == (
        f'  Storage Changer {rig.changer}:1 Drives, 6 Slots ( 0 Import/Export )\n'
        'Data Transfer Element 0:Empty\n'
        f'      Storage Element 1:Full :VolumeTag={tag("TPN001L9")}\n'
        f'      Storage Element 2:Full :VolumeTag={tag("TPN002L9")}\n'
        '      Storage Element 3:Full \n'  # an unlabelled cartridge: its all-zero tag is not printed
        f'      Storage Element 4:Full :VolumeTag={tag("CLN001L1")}\n'
        '      Storage Element 5:Empty\n'
        '      Storage Element 6:Empty\n'
    )


def test_nobarcode_status_and_inventory(rig):
    rig.mtx('load', 1, 0)
    lines = rig.mtx('nobarcode', 'status').stdout.splitlines()
    assert lines[1:3] == ['Data Transfer Element 0:Full (Storage Element 1 Loaded)', '      Storage Element 1:Empty']
    assert lines[3] == '      Storage Element 2:Full '
    assert rig.mtx('inventory').returncode == 0


def test_import_export_slots_are_listed_as_such(tmp_path, shim):
    root = tmp_path / 'library'
    admin('init', root, '--slots', 4, '--drives', 1, '--tapes', 'TPN001L9', '--capacity', '160M', '--import-export', 1)
    status = Rig(root, shim).status()
    assert status.splitlines()[0].endswith(':1 Drives, 4 Slots ( 1 Import/Export )')
    assert status.splitlines()[-1] == '      Storage Element 4 IMPORT/EXPORT:Empty'


def test_load_and_unload_persist_and_agree_with_the_library_state(rig):
    result = rig.mtx('load', 2, 0)
    assert (result.returncode, result.stdout) == (0, 'Loading media from Storage Element 2 into drive 0...done\n')
    assert f'Data Transfer Element 0:Full (Storage Element 2 Loaded):VolumeTag = {tag("TPN002L9")}\n' in rig.status()
    with open_library(rig.root) as library:
        assert library.drives[0].tape == 'TPN002L9' and library.slots[1].tape is None
    result = rig.mtx('unload', 2, 0)
    assert (result.returncode, result.stdout) == (0, 'Unloading drive 0 into Storage Element 2...done\n')
    assert 'Data Transfer Element 0:Empty\n' in rig.status()
    result = rig.mtx('unload', 2, 0)
    assert (result.returncode, result.stderr) == (1, 'Data Transfer Element 0 is Empty\n')


def test_a_load_names_the_cartridge_in_the_ltfs_drive_file_and_an_unload_removes_it(rig):
    assert not os.path.exists(rig.drive)  # the `file` backend's empty drive: no drive file
    assert rig.mtx('load', 2, 0).returncode == 0
    with open(rig.drive, 'rb') as drive:
        assert drive.read() == b'../tapes/TPN002L9\n'.ljust(36, b'\0')
    assert rig.mtx('unload', 2, 0).returncode == 0
    assert not os.path.exists(rig.drive)


def test_inquiry(rig):
    result = rig.mtx('inquiry')
    assert result.stdout == (
        "Product Type: Medium Changer\nVendor ID: 'IBM     '\nProduct ID: '3573-TL         '\n"
        "Revision: 'F.11'\nAttached Changer API: No\n"
    )


def test_errors_have_no_prefix_and_the_request_sense_lines_have_it(rig):
    empty = rig.mtx('load', 5, 0)  # slot 5 (address 4100) is empty: mtx names it in a line of its own
    assert (empty.returncode, empty.stderr) == (1, 'Source Element Address 4100 is Empty\n')
    rig.mtx('load', 1, 0)
    full = rig.mtx('transfer', 2, 3)
    assert (full.returncode, full.stderr) == (1, 'Destination Element Address 4098 is Already Full\n')
    with open_library(rig.root) as library:
        library.mtx_faults.append(MtxFault(5, 0x53, 0x03, 1))
    refused = rig.mtx('unload', 1, 0)
    lines = refused.stderr.splitlines()
    assert refused.returncode == 1
    assert lines[-1] == 'MOVE MEDIUM from Element Address 256 to 4096 Failed'
    sense = [line for line in lines if line.startswith('mtx: Request Sense: ')]
    assert len(sense) == 12 and len(lines) == 13
    assert 'mtx: Request Sense: Sense Key=Illegal Request' in sense
    assert 'mtx: Request Sense: Additional Sense Code = 53' in sense
    assert 'mtx: Request Sense: Additional Sense Qualifier = 03' in sense
    assert rig.mtx('unload', 1, 0).returncode == 0  # the fault was for one move only


def test_a_drive_held_open_by_a_process_keeps_its_tape(rig):
    rig.mtx('load', 1, 0)
    with open(rig.drive):  # this test's process holds the drive, as ltfs does while it serves the tape
        refused = rig.mtx('unload', 1, 0)
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1] == 'MOVE MEDIUM from Element Address 256 to 4096 Failed'
    assert 'mtx: Request Sense: Additional Sense Code = 53' in refused.stderr.splitlines()
    assert rig.mtx('unload', 1, 0).returncode == 0


def test_paths_not_configured_reach_the_real_open(rig, tmp_path):
    other = tmp_path / 'sg9'
    other.write_text('')
    result = rig.run(MTX, '-f', other, 'status')
    assert (result.returncode, result.stderr) == (1, f'{other} is not an sg device, or old sg driver\n')


def test_a_model_that_cannot_start_is_named_on_stderr(rig):
    rig.env['TAPELIB_SCSI_PYTHON'] = '/nonexistent/python3'
    result = rig.mtx('status')
    assert result.returncode == 1
    message = f'scsishim: cannot start /nonexistent/python3 for {rig.changer}: No such file or directory'
    assert message in result.stderr.splitlines()
    assert result.stderr.splitlines()[-1] == 'INQUIRY command Failed'


def test_the_real_mtx_rewrites_an_occupied_source_slot(rig):
    rig.mtx('load', 2, 0)
    assert rig.mtx('transfer', 1, 2).returncode == 0  # someone fills the tape's home slot
    # the drive's source is still 4097 (slot 2), but mtx names the first empty slot instead
    status = rig.status()
    assert f'Data Transfer Element 0:Full (Storage Element 1 Loaded):VolumeTag = {tag("TPN002L9")}\n' in status
    with open_library(rig.root) as library:
        assert library.drives[0].source_slot == 2  # the library itself still knows the true home
    unload = rig.mtx('unload')  # and unloads there, to a slot that was never the tape's home
    assert unload.stdout == 'Unloading drive 0 into Storage Element 1...done\n'
    with open_library(rig.root) as library:
        assert [slot.tape for slot in library.slots[:2]] == ['TPN002L9', 'TPN001L9']


def test_the_real_mtx_says_unknown_source_when_no_slot_is_empty(tmp_path, shim):
    root = tmp_path / 'library'
    admin('init', root, '--slots', 2, '--drives', 1, '--tapes', 'TPN001L9,TPN002L9', '--capacity', '160M')
    rig = Rig(root, shim)
    assert rig.mtx('load', 1, 0).returncode == 0
    with open_library(rig.root) as library:  # a tape put into the emptied slot by hand
        library.tapes['TPN003L9'] = type(library.tapes['TPN001L9'])(id='TPN003L9', barcode='TPN003L9')
        library.slots[0].tape = 'TPN003L9'
    status = rig.status()
    assert f'Data Transfer Element 0:Full (Unknown Storage Element Loaded):VolumeTag = {tag("TPN001L9")}\n' in status
    parsed = parse_status(status)
    assert parsed.drives[0].source_slot is None


def test_pytarchive_reads_the_real_mtx_status(rig):
    rig.mtx('load', 2, 0)
    parsed = parse_status(rig.status())
    assert parsed.changer == rig.changer
    assert len(parsed.drives) == 1 and len(parsed.slots) == 6
    assert parsed.drives[0].barcode == 'TPN002L9' and parsed.drives[0].source_slot == 2
    assert [slot.barcode for slot in parsed.slots] == ['TPN001L9', None, None, 'CLN001L1', None, None]
    assert [slot.full for slot in parsed.slots] == [True, False, True, True, False, False]


def test_tapeinfo_on_a_drive_without_and_with_a_tape(rig):
    empty = rig.run(TAPEINFO, '-f', rig.drive)
    assert empty.returncode == 0, empty.stderr
    lines = empty.stdout.splitlines()
    assert lines[:6] == [
        'Product Type: Tape Drive',
        "Vendor ID: 'IBM     '",
        "Product ID: 'ULTRIUM-HH9     '",
        "Revision: 'Q3G3'",
        'Attached Changer API: No',
        "SerialNumber: '10WT000000'",
    ]
    assert lines[-1] == 'Ready: no'  # real tapeinfo stops there without a tape
    rig.mtx('load', 1, 0)
    loaded = rig.run(TAPEINFO, '-f', rig.drive).stdout.splitlines()
    assert 'Ready: yes' in loaded and 'Density Code: 0x60' in loaded and 'BOP: yes' in loaded
    assert 'Block Position: 0' in loaded and 'MaxPartitions: 3' in loaded
