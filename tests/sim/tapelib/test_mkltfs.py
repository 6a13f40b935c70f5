"""The mkltfs stand-in (sim/tapelib/mkltfs.py): formatting a tape, and what it refuses."""

import os

import pytest


@pytest.mark.root
def test_mkltfs_formats_refuses_to_reformat_without_force_and_needs_a_tape(library):
    no_tape = library.run('mkltfs', '-d', library.drive)
    assert no_tape.returncode == 8
    assert no_tape.stderr.endswith(
        'LTFS11330I Loading cartridge.\nLTFS12016E No medium present.\n'
        'LTFS15044E Cannot set up tape device.\nLTFS15023I Formatting failed.\n'
    )
    library.mtx('load', 1)
    first = library.run('mkltfs', '-d', library.serial, '-n', 'archive one', '-c')
    assert first.returncode == 0
    assert first.stdout == ''
    assert first.stderr.splitlines()[-1] == 'LTFS15024I Medium formatted successfully.'
    again = library.run('mkltfs', '-d', library.drive)
    assert again.returncode == 16
    assert again.stderr.endswith(
        'LTFS15047E Medium is already formatted (0).\n'
        'LTFS15048I Need to specify -f or --force option to format this medium.\n'
        'LTFS15023I Formatting failed.\n'
    )
    bad_serial = library.run('mkltfs', '-d', library.drive, '-s', 'abc')
    assert bad_serial.returncode == 16
    assert bad_serial.stderr.startswith('LTFS15029E Tape serial must be 6 characters.\n')


@pytest.mark.root
def test_mkltfs_with_force_wipes_the_tape(library):
    library.load_and_format()
    library.mount()
    with open(f'{library.mnt}/kept.txt', 'w') as file:
        file.write('data')
    library.unmount_and_wait()
    forced = library.run('mkltfs', '-d', library.drive, '-f', '-s', 'ABC123')
    assert forced.returncode == 0, forced.stderr
    assert 'LTFS15049I Checking the medium (load).\n' in forced.stderr
    library.mount()
    assert os.listdir(library.mnt) == []
    assert os.getxattr(library.mnt, 'user.ltfs.volumeSerial') == b'ABC123'
    library.unmount_and_wait()


def test_mkltfs_refuses_a_cleaning_cartridge(library):
    library.mtx('load', 4)
    result = library.run('mkltfs', '-d', library.drive)
    assert result.returncode == 8
    assert 'LTFS11298E Cannot read volume: unsupported medium.\n' in result.stderr
