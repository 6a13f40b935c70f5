"""The admin CLI besides init (sim/tapelib/admin.py, index.py): faults as the real mtx and the real LTFS
see them, the report of `show`, `cleanup`, and reading a cartridge's index without LTFS."""

import errno
import os
import re
import signal
import subprocess

import pytest

from sim.tapelib import index
from tests.sim.tapelib.conftest import MIB, admin, ltfs_processes, sense_block, tag, wait_for_exit

# --- mtx-error --------------------------------------------------------------------------------


def test_mtx_error_fault_fails_the_next_real_mtx_moves_then_is_used_up(library):
    result = admin(
        'fault',
        library.root,
        'mtx-error',
        '--sense-key',
        'Illegal Request',
        '--asc',
        '53',
        '--ascq',
        '03',
        '--count',
        2,
    )
    assert result.stdout == 'next 2 mtx move(s) fail: Illegal Request, ASC 53, ASCQ 03\n'
    for _ in range(2):
        failed = library.mtx('load', 1, 0)
        assert (failed.returncode, failed.stdout, failed.stderr) == (
            1,
            'Loading media from Storage Element 1 into drive 0...',
            sense_block('Illegal Request', '53', '03') + 'MOVE MEDIUM from Element Address 4096 to 256 Failed\n',
        )
    assert 'Data Transfer Element 0:Empty\n' in library.status()  # nothing moved
    assert library.mtx('load', 1, 0).returncode == 0


def test_mtx_error_fault_takes_a_sense_key_by_number_and_hex_codes(library):
    library.load()
    result = admin('fault', library.root, 'mtx-error', '--sense-key', '2', '--asc', '0x04', '--ascq', '01')
    assert result.stdout == 'next 1 mtx move(s) fail: Not Ready, ASC 04, ASCQ 01\n'
    failed = library.mtx('unload', 1, 0)
    assert failed.returncode == 1
    assert (
        failed.stderr == sense_block('Not Ready', '04', '01') + 'MOVE MEDIUM from Element Address 256 to 4096 Failed\n'
    )
    assert library.mtx('unload', 1, 0).returncode == 0


@pytest.mark.parametrize(
    'option, value, message',
    [
        ('--sense-key', 'Bogus', "argument --sense-key: unknown sense key 'Bogus' (one of: No Sense, "),
        ('--asc', '1FF', "argument --asc: '1FF' is not a hex byte (00-FF)"),
        ('--count', '0', 'argument --count: 0: must be 1 or more'),
    ],
)
def test_mtx_error_fault_refuses_bad_sense_data_in_one_line(library, option, value, message):
    arguments = {'--sense-key': 'Illegal Request', '--asc': '53', '--ascq': '03', option: value}
    refused = admin(
        'fault', library.root, 'mtx-error', *[item for pair in arguments.items() for item in pair], check=False
    )
    assert refused.returncode == 2 and 'Traceback' not in refused.stderr
    assert refused.stderr.splitlines()[-1].startswith(
        f'python -m sim.tapelib fault directory mtx-error: error: {message}'
    )
    assert not [line for line in admin('show', library.root).stdout.splitlines() if line.startswith('  fault:')]


def test_fault_clear_drops_pending_mtx_errors(library):
    admin('fault', library.root, 'mtx-error', '--sense-key', 'Hardware Error', '--asc', '40', '--ascq', '00')
    assert admin('fault', library.root, 'clear').stdout == 'no faults pending\n'
    assert library.mtx('load', 1, 0).returncode == 0


# --- move -------------------------------------------------------------------------------------


def test_move_fault_puts_a_tape_elsewhere_as_the_real_mtx_then_sees_it(library):
    result = admin('fault', library.root, 'move', 'TPN002L9', '--to-slot', 6)
    assert result.stdout == 'TPN002L9 is now in slot 6\n'
    status = library.status().splitlines()
    assert status[3] == '      Storage Element 2:Empty'
    assert status[7] == f'      Storage Element 6 IMPORT/EXPORT:Full :VolumeTag={tag("TPN002L9")}'
    loaded = library.mtx('load', 6, 0)
    assert (loaded.returncode, loaded.stdout) == (0, 'Loading media from Storage Element 6 into drive 0...done\n')


def test_a_tape_moved_by_hand_into_the_home_slot_of_a_loaded_tape(library):
    library.load(1)
    admin('fault', library.root, 'move', 'TPN002L9', '--to-slot', 1)
    # The real mtx names the first empty slot as the drive's source, not slot 1, the tape's home.
    status = library.status()
    assert f'Data Transfer Element 0:Full (Storage Element 2 Loaded):VolumeTag = {tag("TPN001L9")}\n' in status
    unloaded = library.mtx('unload')
    assert unloaded.stdout == 'Unloading drive 0 into Storage Element 2...done\n'
    assert f'      Storage Element 2:Full :VolumeTag={tag("TPN001L9")}\n' in library.status()


@pytest.mark.parametrize(
    'barcode, slot, message',
    [
        ('TPN002L9', 3, 'sim.tapelib: slot 3 already holds NOBARCODE1'),
        ('TPN002L9', 7, 'sim.tapelib: no slot 7 (slots 1-6)'),
        ('TPN001L9', 5, 'sim.tapelib: TPN001L9 is in drive 0: a tape in a drive is moved by the robot'),
        (
            'NOPE01L9',
            5,
            "sim.tapelib: no tape 'NOPE01L9' in this library (tapes: TPN001L9, TPN002L9, NOBARCODE1, CLN001L1)",
        ),
    ],
)
def test_move_fault_refusals_are_one_line_and_move_nothing(library, barcode, slot, message):
    library.load(1)
    before = library.status()
    refused = admin('fault', library.root, 'move', barcode, '--to-slot', slot, check=False)
    assert (refused.returncode, refused.stderr) == (1, message + '\n')
    assert library.status() == before


# --- tape-full --------------------------------------------------------------------------------


def capacity_mb(library, barcode):
    text = (library.tape(barcode) / 'filedebug_tc_conf.xml').read_text()
    return int(re.search(r'<capacity_mb>(\d+)</capacity_mb>', text).group(1))


def volume_size(mountpoint):
    volume = os.statvfs(mountpoint)
    return volume.f_blocks * volume.f_frsize, volume.f_bavail * volume.f_frsize


@pytest.mark.root
def test_tape_full_fault_makes_the_cartridge_that_small_from_its_next_load(make_library):
    library = make_library(capacity='1G')
    library.load_and_format()
    library.mount()
    size, _ = volume_size(library.mnt)
    assert 900 * MIB < size < 1024 * MIB  # LTFS gives about 92.5 % of the cartridge to data
    result = admin('fault', library.root, 'tape-full', 'TPN001L9', '--at', '160M')
    assert result.stdout == 'tape TPN001L9 holds 160 MiB from its next load\n'
    assert capacity_mb(library, 'TPN001L9') == 160
    assert volume_size(library.mnt)[0] == size  # the tape in the drive keeps its size until it is loaded again
    library.unmount()

    library.mount()
    size, free = volume_size(library.mnt)
    assert 140 * MIB < size < 160 * MIB and free <= size
    written = 0
    with pytest.raises(OSError) as full:
        with open(f'{library.mnt}/fill.bin', 'wb') as file:
            while written < 400 * MIB:  # a bound, should ENOSPC never come
                file.write(b'\x5a' * MIB)
                written += MIB
    assert full.value.errno == errno.ENOSPC
    # The real ltfs acknowledges writes past the end (tens of MiB here) and drops them: the file holds what fit.
    assert 100 * MIB < os.path.getsize(f'{library.mnt}/fill.bin') <= min(size, written)
    assert volume_size(library.mnt)[1] == 0
    library.unmount()
    assert capacity_mb(library, 'TPN001L9') == 160  # ltfs leaves the cartridge's configuration alone


def test_tape_full_fault_refuses_less_than_160m_and_unknown_tapes(library):
    small = admin('fault', library.root, 'tape-full', 'TPN001L9', '--at', '159M', check=False)
    assert small.returncode == 2 and 'Traceback' not in small.stderr
    assert small.stderr.splitlines()[-1] == (
        'python -m sim.tapelib fault directory tape-full: error: argument --at: 159M: a tape needs at least 160M here'
    )
    unknown = admin('fault', library.root, 'tape-full', 'NOPE01L9', '--at', '160M', check=False)
    assert (unknown.returncode, unknown.stderr) == (
        1,
        "sim.tapelib: no tape 'NOPE01L9' in this library (tapes: TPN001L9, TPN002L9, NOBARCODE1, CLN001L1)\n",
    )
    elsewhere = admin('fault', f'{library.root}/mnt', 'tape-full', 'TPN001L9', '--at', '160M', check=False)
    assert elsewhere.returncode == 1 and elsewhere.stderr.startswith(
        f'sim.tapelib: {library.root}/mnt is not a virtual tape library (no state.json; '
    )
    assert capacity_mb(library, 'TPN001L9') == 160


# --- flip-byte --------------------------------------------------------------------------------


@pytest.mark.root
def test_flip_byte_fault_changes_one_byte_that_the_real_ltfs_reads_back(library):
    payload = bytes(range(1, 256)) * 4112  # about 1 MiB: the file spans data records
    library.load_and_format()
    library.mount()
    os.mkdir(f'{library.mnt}/folder')
    with open(f'{library.mnt}/folder/data.bin', 'wb') as file:
        file.write(payload)
    with open(f'{library.mnt}/other.txt', 'w') as file:
        file.write('untouched\n')
    open(f'{library.mnt}/empty', 'w').close()
    library.unmount()

    result = admin('fault', library.root, 'flip-byte', 'TPN001L9', 'folder/data.bin')
    middle = len(payload) // 2
    old, new = payload[middle], payload[middle] ^ 0xFF
    match = re.fullmatch(
        r'folder/data\.bin on TPN001L9: record (1_\d+_R), byte (\d+) flipped \((.*)\)\n', result.stdout
    )
    assert match and match[3] == f'0x{old:02x} -> 0x{new:02x}', result.stdout
    empty = admin('fault', library.root, 'flip-byte', 'TPN001L9', 'empty', check=False)
    assert (empty.returncode, empty.stderr) == (
        1,
        'sim.tapelib: TPN001L9: empty is empty on the tape: no byte to flip\n',
    )

    library.mount('ro')  # a fresh mount: nothing cached
    with open(f'{library.mnt}/folder/data.bin', 'rb') as file:
        read = file.read()
    expected = bytearray(payload)
    expected[middle] = new
    assert read == expected  # exactly that byte, nothing else
    with open(f'{library.mnt}/other.txt') as file:
        assert file.read() == 'untouched\n'
    library.unmount()


def test_flip_byte_fault_refuses_a_missing_file_and_an_unformatted_tape(library):
    library.load_and_format()  # mkltfs needs no mount: no root
    missing = admin('fault', library.root, 'flip-byte', 'TPN001L9', 'nothing/here.bin', check=False)
    assert (missing.returncode, missing.stderr) == (1, 'sim.tapelib: TPN001L9: no file nothing/here.bin on the tape\n')
    blank = admin('fault', library.root, 'flip-byte', 'TPN002L9', 'any.bin', check=False)
    assert (blank.returncode, blank.stderr) == (
        1,
        f'sim.tapelib: TPN002L9: {library.tape("TPN002L9")} holds no LTFS index (not formatted?)\n',
    )


# --- damage and clear -------------------------------------------------------------------------


@pytest.mark.root
def test_damage_fault_makes_the_real_ltfs_refuse_the_mount_until_clear(library):
    library.load_and_format()
    library.mount()
    with open(f'{library.mnt}/kept.txt', 'w') as file:
        file.write('still here\n')
    library.unmount()

    result = admin('fault', library.root, 'damage', 'TPN001L9')
    assert result.stdout == f'tape TPN001L9: its LTFS labels are gone until `fault {library.root} clear`\n'
    refused = library.try_mount()
    assert refused.returncode == 1 and not library.mounted()
    assert 'LTFS11009E Cannot read volume: failed to read partition labels.' in refused.stderr
    assert 'LTFS14013E Cannot mount the volume.' in refused.stderr
    assert ltfs_processes(library.mnt) == []

    assert admin('fault', library.root, 'clear').stdout == 'no faults pending\n'
    library.mount()
    with open(f'{library.mnt}/kept.txt') as file:
        assert file.read() == 'still here\n'
    library.unmount()


def test_damage_fault_refuses_an_unformatted_tape(library):
    refused = admin('fault', library.root, 'damage', 'TPN002L9', check=False)
    assert (refused.returncode, refused.stderr) == (1, 'sim.tapelib: TPN002L9 is not formatted: nothing to damage\n')


# --- show -------------------------------------------------------------------------------------


def test_show_describes_a_new_library(library):
    root = library.root
    assert admin('show', root).stdout.splitlines() == [
        f'library {root}: 6 slots (1 import/export), 1 drives',
        f'  drive 0 (10WT000000, {library.drive}): empty',
        '  slot 1: TPN001L9',
        '  slot 2: TPN002L9',
        '  slot 3: NOBARCODE1',
        '  slot 4: CLN001L1',
        '  slot 5: empty',
        '  slot 6 import/export: empty',
        f'  tape TPN001L9: not formatted, 160 MiB, {root}/tapes/TPN001L9',
        f'  tape TPN002L9: not formatted, 160 MiB, {root}/tapes/TPN002L9',
        f'  tape NOBARCODE1: not formatted, 160 MiB, {root}/tapes/NOBARCODE1',
        f'  tape CLN001L1: cleaning cartridge, 160 MiB, {root}/tapes/CLN001L1',
    ]
    elsewhere = admin('show', f'{root}/mnt', check=False)
    assert (elsewhere.returncode, elsewhere.stderr.count('\n')) == (1, 1) and 'Traceback' not in elsewhere.stderr


@pytest.mark.root
def test_show_names_the_ltfs_holding_a_drive_and_the_faults(library):
    library.load(2)
    library.format('TPN002', 'TPN002L9')
    library.mount()
    [pid] = ltfs_processes(library.mnt)
    admin(
        'fault', library.root, 'mtx-error', '--sense-key', 'Hardware Error', '--asc', '40', '--ascq', '00', '--count', 3
    )
    admin('fault', library.root, 'tape-full', 'TPN001L9', '--at', '200M')
    lines = admin('show', library.root).stdout.splitlines()
    assert lines[1] == f'  drive 0 (10WT000000, {library.drive}): TPN002L9 from slot 2; held by pid {pid}'
    assert lines[3] == '  slot 2: empty'
    assert f'  tape TPN001L9: not formatted, 200 MiB, {library.root}/tapes/TPN001L9' in lines
    assert f'  tape TPN002L9: formatted, 160 MiB, {library.root}/tapes/TPN002L9' in lines
    assert lines[-1] == '  fault: next 3 mtx move(s) fail with sense 4/40/00'
    library.unmount()
    assert admin('show', library.root).stdout.splitlines()[1].endswith(': TPN002L9 from slot 2')


# --- cleanup ----------------------------------------------------------------------------------


def test_cleanup_of_a_quiet_library_does_nothing(library):
    library.load()
    result = admin('cleanup', library.root)
    assert (result.returncode, result.stdout) == (0, '')
    assert library.mtx('unload', 1, 0).returncode == 0


@pytest.mark.root
def test_cleanup_unmounts_a_running_ltfs_and_its_index_keeps_what_was_written(library):
    library.load_and_format()
    library.mount()
    with open(f'{library.mnt}/late.txt', 'w') as file:
        file.write('written just before cleanup\n')
    [pid] = ltfs_processes(library.mnt)
    result = admin('cleanup', library.root)
    assert result.stdout.splitlines()[0] == f'unmounted {library.mnt}'
    assert 'killed' not in result.stdout and 'lazily' not in result.stdout
    wait_for_exit(pid, timeout=0.1)  # cleanup returns once ltfs has ended
    assert not library.mounted()
    assert 'late.txt' in index.entries(index.newest_index(library.tape('TPN001L9')))
    checked = library.run('ltfsck', library.drive)
    assert 'LTFS16022I Volume is consistent.' in checked.stderr, checked.stderr
    assert library.mtx('unload', 1, 0).returncode == 0  # the drive is free


@pytest.mark.root
def test_cleanup_after_a_crash_undoes_the_stale_mount(library):
    library.load_and_format()
    library.mount()
    with open(f'{library.mnt}/lost.bin', 'wb') as file:
        file.write(os.urandom(2 * MIB))
    [pid] = ltfs_processes(library.mnt)
    os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid)
    with pytest.raises(OSError) as stale:
        os.listdir(library.mnt)
    assert stale.value.errno == errno.ENOTCONN
    result = admin('cleanup', library.root)
    assert result.stdout == f'unmounted {library.mnt}\n'
    assert not library.mounted() and os.listdir(library.mnt) == []
    refused = library.try_mount()  # what the real LTFS makes of the crash: ltfsck first
    assert refused.returncode == 1 and 'LTFS11220E' in refused.stderr and not library.mounted()


@pytest.mark.root
def test_cleanup_asks_an_ltfs_it_cannot_unmount_to_end_and_its_index_keeps_what_was_written(library):
    library.load_and_format()
    library.mount()
    with open(f'{library.mnt}/kept.txt', 'w') as file:
        file.write('written before cleanup\n')
    [pid] = ltfs_processes(library.mnt)
    inside = subprocess.Popen(['sleep', '60'], cwd=library.mnt)  # keeps the mount busy: umount fails
    try:
        result = admin('cleanup', library.root)
    finally:
        inside.kill()
        inside.wait()
    assert result.stdout.splitlines() == [
        f'cannot unmount {library.mnt}: umount: {library.mnt}: target is busy.',
        f'drive 0: asked pid {pid} to end (it unmounts and writes its index)',
    ]
    wait_for_exit(pid, timeout=0.1)
    assert not library.mounted()
    tape = library.tape('TPN001L9')
    generations = {partition: generation for generation, partition, _ in sorted(index.indexes(tape))}
    assert generations == {0: 2, 1: 2}  # on SIGTERM ltfs wrote its index to both partitions, as at umount
    assert 'kept.txt' in index.entries(index.newest_index(tape))


# --- index.py: reading a cartridge without LTFS -----------------------------------------------


@pytest.mark.root
def test_index_reads_the_newest_index_and_the_extents_ltfs_wrote(library):
    big = os.urandom(1300 * 1024)  # three 512 KiB records
    library.load_and_format()
    tape = library.tape('TPN001L9')
    assert [generation for generation, _, _ in index.indexes(tape)] == [1, 1]  # mkltfs writes one to each partition
    library.mount()
    os.mkdir(f'{library.mnt}/dir x')
    with open(f'{library.mnt}/dir x/big.bin', 'wb') as file:
        file.write(big)
    with open(f'{library.mnt}/dir x/a:b', 'w') as file:  # ':' is percent-encoded in the index
        file.write('colon\n')
    open(f'{library.mnt}/empty', 'w').close()
    library.unmount()

    newest = index.newest_index(tape)
    assert sorted(index.entries(newest)) == ['dir x', 'dir x/a:b', 'dir x/big.bin', 'empty']
    extents = index.extents(tape, '/dir x/big.bin')
    assert sum(extent.byte_count for extent in extents) == len(big)
    assert all(extent.partition == 1 for extent in extents)  # data goes to the data partition
    assert index.extents(tape, 'empty') == []
    with pytest.raises(index.IndexReadError, match='no file dir x on the tape'):
        index.extents(tape, 'dir x')
    # The extents name the records holding the file: read them back without LTFS.
    rebuilt = bytearray(len(big))
    for extent in extents:
        data, block = b'', extent.start_block
        while len(data) < extent.byte_offset + extent.byte_count:
            data += index.record_path(tape, extent.partition, block).read_bytes()
            block += 1
        piece = data[extent.byte_offset : extent.byte_offset + extent.byte_count]
        rebuilt[extent.file_offset : extent.file_offset + len(piece)] = piece
    assert rebuilt == big

    library.mount('ro')  # what the real ltfs says about the same index and file
    assert int(os.getxattr(library.mnt, 'user.ltfs.indexGeneration')) == int(newest.findtext('generationnumber'))
    assert int(os.getxattr(f'{library.mnt}/dir x/big.bin', 'user.ltfs.startblock')) == extents[0].start_block
    assert os.getxattr(f'{library.mnt}/dir x/big.bin', 'user.ltfs.partition') == b'b'
    with open(f'{library.mnt}/dir x/a:b') as file:
        assert file.read() == 'colon\n'
    library.unmount()
