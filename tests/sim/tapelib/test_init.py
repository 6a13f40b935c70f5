"""`python -m sim.tapelib init` (sim/tapelib/builder.py): the library directory, its stand-ins and
the pytarchive config lines."""

import os
import shutil

from tests.sim.tapelib.conftest import admin


def test_init_prints_the_pytarchive_config_and_makes_the_executables(library):
    root = library.root
    assert library.config.splitlines() == [
        '[General]',
        f'tape_max_size = {16 * 1024 * 1024}',
        '',
        '[Device]',
        f'library = {root}/dev/sch0',
        'drive_serial = 10WT000000',
        'drive_index = 0',
        f'drive_device = {root}/dev/nst0',
        f'mountpoint = {root}/mnt',
        f'mtx = {root}/bin/mtx',
        f'tapeinfo = {root}/bin/tapeinfo',
        f'mkltfs = {root}/bin/mkltfs',
        f'ltfs = {root}/bin/ltfs',
        f'umount = {shutil.which("umount")}',
    ]
    for command in ('mtx', 'tapeinfo', 'mkltfs', 'ltfs'):
        assert os.access(f'{root}/bin/{command}', os.X_OK)


def test_init_refuses_bad_input_in_one_line(tmp_path, library):
    again = admin('init', library.root, '--slots', 2, '--tapes', 'A', '--capacity', '16M', check=False)
    assert again.returncode == 1
    assert again.stderr == (
        f'sim.tapelib: {library.root} already holds a virtual library: remove it first '
        f'(python -m sim.tapelib cleanup {library.root}; rm -r {library.root})\n'
    )
    crowded = admin('init', tmp_path / 'x', '--slots', 1, '--tapes', 'A,B', '--capacity', '16M', check=False)
    assert (crowded.returncode, crowded.stderr) == (1, 'sim.tapelib: 2 tapes do not fit into 1 slots\n')
    twice = admin('init', tmp_path / 'y', '--slots', 3, '--tapes', 'A,A', '--capacity', '16M', check=False)
    assert (twice.returncode, twice.stderr) == (1, 'sim.tapelib: barcode given twice: A\n')
