"""`python -m sim.tapelib init` (sim/tapelib/builder.py): the library directory, and the pytarchive config
lines it prints, which run the real mtx and tapeinfo (through the SCSI shim) and the real LTFS."""

import os
import shlex
import shutil
import xml.etree.ElementTree as ElementTree

import pytest

from tests.sim.tapelib.conftest import MIB, PROJECT, admin, sense_block, tag


def cartridge_config(library, barcode):
    """The `file` backend's settings of a cartridge, as it reads them at every load."""
    root = ElementTree.parse(library.tape(barcode) / 'filedebug_tc_conf.xml').getroot()
    return {child.tag: child.text for child in root}


def test_init_lays_out_the_changer_the_cartridges_and_a_mount_point(make_library):
    library = make_library(capacity='1G')
    root = library.root
    assert sorted(os.listdir(root)) == ['dev', 'drives', 'mnt', 'state.json', 'state.lock', 'tapes']
    assert os.listdir(f'{root}/dev') == ['sch0'] and os.path.isfile(library.changer)
    assert os.listdir(f'{root}/drives') == []  # an empty drive is a missing drive file
    assert os.listdir(library.mnt) == []
    assert sorted(os.listdir(f'{root}/tapes')) == ['CLN001L1', 'NOBARCODE1', 'TPN001L9', 'TPN002L9']
    for barcode in ('CLN001L1', 'NOBARCODE1', 'TPN001L9', 'TPN002L9'):
        assert os.listdir(library.tape(barcode)) == ['filedebug_tc_conf.xml']  # not formatted: no records
        config = cartridge_config(library, barcode)
        assert config['capacity_mb'] == '1024'  # the backend's unit is the MiB
        assert (config['cart_type'], config['density_code']) == ('L9', '60')  # what an HH9 drive accepts
        assert config['delay_mode'] == 'None'


def test_init_prints_config_lines_that_name_the_real_programs(make_library):
    library = make_library(capacity='1G', drives=2)
    root = library.root
    assert library.config['General']['tape_max_size'] == str(1024**3)
    device = dict(library.config['Device'])
    drive0 = f'{root}/drives/Drive_10WT000000.ULTRIUM-HH9'
    drive1 = f'{root}/drives/Drive_10WT000010.ULTRIUM-HH9'
    assert {key: device[key] for key in ('library', 'drive_serial', 'drive_index', 'drive_device', 'mountpoint')} == {
        'library': f'{root}/dev/sch0',
        'drive_serial': '10WT000000, 10WT000010',
        'drive_index': '0, 1',
        'drive_device': f'{drive0}, {drive1}',
        'mountpoint': f'{root}/mnt, {root}/mnt1',
    }
    assert os.path.isdir(f'{root}/mnt') and os.path.isdir(f'{root}/mnt1')
    for name, program in (('mtx', '/usr/sbin/mtx'), ('tapeinfo', '/usr/sbin/tapeinfo')):
        command = shlex.split(device[name])
        assert command[0] == 'env' and command[-1] == program
        environment = dict(setting.split('=', 1) for setting in command[1:-1])
        assert environment['LD_PRELOAD'] == f'{PROJECT}/build/tapelib/libscsishim.so'
        assert environment['TAPELIB_SCSI_DEVICES'] == f'{root}/dev/sch0=changer,{drive0}=drive:0,{drive1}=drive:1'
        assert environment['PYTHONPATH'] == PROJECT
        assert os.access(environment['TAPELIB_SCSI_PYTHON'], os.X_OK)
    for name in ('mkltfs', 'ltfs', 'ltfsck'):
        assert device[name] == f'{PROJECT}/build/ltfs/bin/{name}' and os.access(device[name], os.X_OK)
    assert device['umount'] == shutil.which('umount')


def test_the_printed_mtx_and_tapeinfo_reach_the_library(make_library):
    library = make_library(drives=2)
    status = library.status()
    assert status.splitlines()[0] == f'  Storage Changer {library.changer}:2 Drives, 6 Slots ( 1 Import/Export )'
    assert f'      Storage Element 1:Full :VolumeTag={tag("TPN001L9")}' in status.splitlines()
    assert library.mtx('load', 2, 1).returncode == 0
    second = f'{library.root}/drives/Drive_10WT000010.ULTRIUM-HH9'
    with open(second, 'rb') as drive:  # the loaded drive's file names the cartridge's folder
        assert drive.read() == b'../tapes/TPN002L9\n'.ljust(36, b'\0')
    assert not os.path.exists(library.drive)
    info = library.run('tapeinfo', '-f', second)
    assert info.returncode == 0, info.stderr
    assert "SerialNumber: '10WT000010'" in info.stdout.splitlines() and 'Ready: yes' in info.stdout.splitlines()
    assert library.run('tapeinfo', '-f', library.drive).stdout.splitlines()[-1] == 'Ready: no'


def test_capacity_goes_into_each_cartridge_in_mib(make_library):
    library = make_library(tapes='TPN001L9,-', slots=2, import_export=0, capacity='200M')
    assert library.config['General']['tape_max_size'] == str(200 * MIB)
    assert cartridge_config(library, 'TPN001L9')['capacity_mb'] == '200'
    assert cartridge_config(library, 'NOBARCODE1')['capacity_mb'] == '200'


@pytest.mark.parametrize(
    'arguments, status, message',
    [
        (
            ['--capacity', '100M'],
            2,
            'python -m sim.tapelib init: error: argument --capacity: 100M: a tape needs at least 160M here',
        ),
        (
            ['--capacity', '1.5G'],
            2,
            "python -m sim.tapelib init: error: argument --capacity: '1.5G' is not a size (bytes, or a number with "
            'K, M, G, T)',
        ),
        (
            ['--tapes', 'TPN001L9,TPN/02L9'],
            2,
            "python -m sim.tapelib init: error: argument --tapes: 'TPN/02L9' is not a barcode (1-32 printable "
            'characters) or "-"',
        ),
        (['--tapes', 'TPN001L9,-,TPN001L9'], 1, 'sim.tapelib: barcode given twice: TPN001L9'),
        (['--tapes', 'A,B,C,D'], 1, 'sim.tapelib: 4 tapes do not fit into 3 slots'),
        (['--import-export', '3'], 1, 'sim.tapelib: --import-export 3: must be 0 to 2 (they count among the 3 slots)'),
    ],
    ids=['small', 'not-a-size', 'slash', 'duplicate', 'too-many', 'import-export'],
)
def test_init_refuses_bad_input_in_one_line_and_creates_nothing(tmp_path, arguments, status, message):
    options = {'--slots': '3', '--tapes': 'TPN001L9', '--capacity': '160M'}
    options.update(zip(arguments[::2], arguments[1::2]))
    refused = admin('init', tmp_path / 'library', *[item for pair in options.items() for item in pair], check=False)
    assert refused.returncode == status and 'Traceback' not in refused.stderr
    assert refused.stderr.splitlines()[-1] == message  # argparse puts its usage above its one line
    assert refused.stdout == '' and not (tmp_path / 'library').exists()


def test_init_refuses_a_directory_that_is_not_empty_or_already_a_library(tmp_path, library):
    (tmp_path / 'busy').mkdir()
    (tmp_path / 'busy' / 'notes.txt').write_text('mine\n')
    busy = admin('init', tmp_path / 'busy', '--slots', 2, '--capacity', '160M', check=False)
    assert (busy.returncode, busy.stderr) == (1, f'sim.tapelib: {tmp_path}/busy exists and is not an empty directory\n')
    assert os.listdir(tmp_path / 'busy') == ['notes.txt']
    again = admin('init', library.root, '--slots', 2, '--capacity', '160M', check=False)
    assert (again.returncode, again.stderr) == (
        1,
        f'sim.tapelib: {library.root} already holds a virtual library: remove it first '
        f'(python -m sim.tapelib cleanup {library.root}; rm -r {library.root})\n',
    )
    (tmp_path / 'empty').mkdir()
    assert admin('init', tmp_path / 'empty', '--slots', 2, '--capacity', '160M').returncode == 0


@pytest.mark.root
def test_the_printed_ltfs_commands_format_mount_and_check_a_cartridge(library):
    library.load()
    library.format()
    again = library.run('mkltfs', '-d', library.drive, '-s', 'TPN001', '-n', 'TPN001L9')
    assert again.returncode == 16 and 'LTFS15047E' in again.stderr  # not twice: medium is already formatted
    library.mount()
    with open(f'{library.mnt}/kept.txt', 'w') as file:
        file.write('on tape\n')
    # While ltfs serves the tape it holds the drive: the robot refuses to take the tape out.
    held = library.mtx('unload', 1, 0)
    assert held.returncode == 1
    assert held.stderr == (
        sense_block('Illegal Request', '53', '03') + 'MOVE MEDIUM from Element Address 256 to 4096 Failed\n'
    )
    library.unmount()
    checked = library.run('ltfsck', library.drive)
    # ltfsck exits 1 ("corrected") even when all it says is that the volume is consistent
    assert checked.returncode in (0, 1) and 'LTFS16022I Volume is consistent.' in checked.stderr, checked.stderr
    unloaded = library.mtx('unload', 1, 0)
    assert (unloaded.returncode, unloaded.stdout) == (0, 'Unloading drive 0 into Storage Element 1...done\n')
    assert not os.path.exists(library.drive)
    library.load()
    library.mount('ro')
    with open(f'{library.mnt}/kept.txt') as file:
        assert file.read() == 'on tape\n'
    library.unmount()
