"""The mtx stand-in (sim/tapelib/mtx.py): status byte for byte as mtx 1.3.12, moves that persist
across processes, the real error messages."""

import os
from concurrent.futures import ThreadPoolExecutor

from tests.sim.tapelib.conftest import tag


def test_status_is_byte_for_byte_the_mtx_format(library):
    header = f'  Storage Changer {library.changer}:1 Drives, 6 Slots ( 1 Import/Export )\n'
    assert library.status() == (
        header
        + 'Data Transfer Element 0:Empty\n'
        + f'      Storage Element 1:Full :VolumeTag={tag("TPN001L9")}\n'
        + f'      Storage Element 2:Full :VolumeTag={tag("TPN002L9")}\n'
        + '      Storage Element 3:Full \n'
        + f'      Storage Element 4:Full :VolumeTag={tag("CLN001L1")}\n'
        + '      Storage Element 5:Empty\n'
        + '      Storage Element 6 IMPORT/EXPORT:Empty\n'
    )
    assert library.mtx('load', 2).stdout == 'Loading media from Storage Element 2 into drive 0...done\n'
    assert library.mtx('transfer', 1, 6).stdout == ''
    assert library.status() == (
        header
        + f'Data Transfer Element 0:Full (Storage Element 2 Loaded):VolumeTag = {tag("TPN002L9")}\n'
        + '      Storage Element 1:Empty\n'
        + '      Storage Element 2:Empty\n'
        + '      Storage Element 3:Full \n'
        + f'      Storage Element 4:Full :VolumeTag={tag("CLN001L1")}\n'
        + '      Storage Element 5:Empty\n'
        + f'      Storage Element 6 IMPORT/EXPORT:Full :VolumeTag={tag("TPN001L9")}\n'
    )


def test_status_without_barcodes_and_with_the_changer_from_the_environment(library):
    nobarcode = library.mtx('nobarcode', 'status').stdout
    assert nobarcode.splitlines()[1:3] == ['Data Transfer Element 0:Empty', '      Storage Element 1:Full ']
    from_env = library.run('mtx', 'status', env={**os.environ, 'CHANGER': library.changer})
    assert from_env.stdout == library.status()


def test_load_unload_transfer_persist_across_processes(library):
    assert library.mtx('load', 3).stdout == 'Loading media from Storage Element 3 into drive 0...done\n'
    assert 'Data Transfer Element 0:Full (Storage Element 3 Loaded)\n' in library.status()
    # without a slot the tape goes back where it came from
    assert library.mtx('unload').stdout == 'Unloading drive 0 into Storage Element 3...done\n'
    # several commands in one run, left to right, as mtx does them
    both = library.mtx('load', 1, 0, 'unload', 5, 0)
    assert both.stdout == (
        'Loading media from Storage Element 1 into drive 0...done\nUnloading drive 0 into Storage Element 5...done\n'
    )
    assert f'      Storage Element 5:Full :VolumeTag={tag("TPN001L9")}\n' in library.status()
    assert '      Storage Element 1:Empty\n' in library.status()


def test_mtx_errors_are_the_real_messages_and_change_nothing(library):
    mtx = f'{library.root}/bin/mtx'  # mtx prefixes its errors with the name it was called by
    library.mtx('load', 1)
    before = library.status()
    cases = [
        (('load', 2), '', f'{mtx}: Drive 0 Full (Storage Element 1 loaded)\n'),
        (('unload', 2), '', f'{mtx}: Storage Element 2 is Already Full\n'),
        (('transfer', 2, 3), '', f'{mtx}: Destination Element Address 4098 is Already Full\n'),
        (('transfer', 5, 6), '', f'{mtx}: Source Element Address 4100 is Empty\n'),
        (('load', 9), '', f"{mtx}: Invalid <storage-element-number> argument '9' to 'load' command\n"),
        (('transfer', 2, 7), '', f'{mtx}: Invalid destination\n'),
    ]
    for arguments, stdout, stderr in cases:
        result = library.mtx(*arguments)
        assert (result.returncode, result.stdout, result.stderr) == (1, stdout, stderr), arguments
    assert library.status() == before
    library.mtx('unload')
    empty_slot = library.mtx('load', 5)
    assert (empty_slot.returncode, empty_slot.stdout, empty_slot.stderr) == (
        1,
        'Loading media from Storage Element 5 into drive 0...',
        f'{mtx}: Source Element Address 4100 is Empty\n',
    )
    assert library.mtx('unload', 5).stderr == f'{mtx}: Data Transfer Element 0 is Empty\n'
    assert library.mtx('unload').stderr == f'{mtx}: No Source for tape in drive 0!\n'
    wrong = library.run('mtx', '-f', '/dev/nonexistent-changer', 'status')
    assert (wrong.returncode, wrong.stderr) == (
        1,
        f"{mtx}: cannot open SCSI device '/dev/nonexistent-changer' - No such file or directory\n",
    )
    usage = library.mtx('frobnicate')
    assert usage.returncode == 1 and usage.stderr.startswith('Usage:\n\tmtx --version\n')


def test_concurrent_mtx_runs_keep_the_state_whole(make_library):
    library = make_library(tapes='A1,A2,A3,A4,A5,A6', slots=12, import_export=0)

    def shuffle(slot):
        for source, destination in ((slot, slot + 6), (slot + 6, slot)) * 2:
            result = library.mtx('transfer', source, destination)
            assert result.returncode == 0, result.stderr
        return library.status()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(shuffle, range(1, 7)))
    assert library.status().splitlines()[2:8] == [
        f'      Storage Element {slot}:Full :VolumeTag={tag(f"A{slot}")}' for slot in range(1, 7)
    ]
