"""The admin CLI besides init (sim/tapelib/admin.py): faults, the report of `show`, `cleanup`."""

import errno
import os

import pytest

from tests.sim.tapelib.conftest import admin, ltfs_processes, wait_for_exit, sense_block


def test_mtx_error_fault_fails_the_next_moves_then_is_used_up(library):
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
        '2',
    )
    assert result.stdout == 'next 2 mtx move(s) fail: Illegal Request, ASC 53, ASCQ 03\n'
    mtx = f'{library.root}/bin/mtx'
    for _ in range(2):
        failed = library.mtx('load', 1)
        assert (failed.returncode, failed.stdout, failed.stderr) == (
            1,
            'Loading media from Storage Element 1 into drive 0...',
            sense_block('Illegal Request', '53', '03')
            + f'{mtx}: MOVE MEDIUM from Element Address 4096 to 256 Failed\n',
        )
    assert library.mtx('load', 1).returncode == 0


@pytest.mark.root
def test_tape_full_fault_stops_writes_at_that_many_bytes(library):
    library.load_and_format()
    library.mount()
    with open(f'{library.mnt}/before.bin', 'wb') as file:
        file.write(os.urandom(1024 * 1024))
    assert (
        admin('fault', library.root, 'tape-full', 'TPN001L9', '--at', '3M').stdout
        == f'tape TPN001L9 is full at {3 * 1024 * 1024} bytes of data\n'
    )
    stats = os.statvfs(library.mnt)
    assert abs(stats.f_bavail * stats.f_frsize - 2 * 1024 * 1024) < 64 * 1024
    with pytest.raises(OSError) as full, open(f'{library.mnt}/after.bin', 'wb') as file:
        for _ in range(100):
            file.write(b'x' * 65536)
            file.flush()
    assert full.value.errno == errno.ENOSPC
    library.unmount_and_wait()
    library.mount()  # the limit holds across mounts
    assert os.statvfs(library.mnt).f_bavail * os.statvfs(library.mnt).f_frsize < 64 * 1024
    library.unmount_and_wait()


@pytest.mark.root
def test_flip_byte_fault_corrupts_one_byte_of_a_file_on_tape(library):
    library.load_and_format()
    library.mount()
    os.mkdir(f'{library.mnt}/folder')
    with open(f'{library.mnt}/folder/file.txt', 'wb') as file:
        file.write(b'0123456789')
    mtime = os.stat(f'{library.mnt}/folder/file.txt').st_mtime_ns
    library.unmount_and_wait()
    result = admin('fault', library.root, 'flip-byte', 'TPN001L9', 'folder/file.txt')
    assert result.stdout == 'folder/file.txt on TPN001L9: byte 5 flipped (0x35 -> 0xca)\n'
    library.mount()
    with open(f'{library.mnt}/folder/file.txt', 'rb') as file:
        assert file.read() == b'01234\xca6789'
    assert os.stat(f'{library.mnt}/folder/file.txt').st_mtime_ns == mtime
    admin('fault', library.root, 'flip-byte', 'TPN001L9', '/folder/file.txt')  # while mounted
    with open(f'{library.mnt}/folder/file.txt', 'rb') as file:
        assert file.read() == b'0123456789'
    outside = admin('fault', library.root, 'flip-byte', 'TPN001L9', '../../state.json', check=False)
    assert (outside.returncode, outside.stderr) == (1, 'sim.tapelib: ../../state.json is outside the tape\n')
    library.unmount_and_wait()


@pytest.mark.root
def test_mount_fails_fault_fails_the_next_mount_only(library):
    library.load_and_format()
    admin('fault', library.root, 'mount-fails')
    failed = library.run('ltfs', '-o', f'devname={library.serial}', library.mnt)
    assert failed.returncode == 1
    assert [line.split(' ', 1)[1] for line in failed.stderr.splitlines()[-2:]] == [
        'LTFS11009E Cannot read volume: failed to read partition labels.',
        'LTFS14013E Cannot mount the volume from device.',
    ]
    assert not ltfs_processes(library.mnt)
    library.mount()
    library.unmount_and_wait()


def test_fault_on_an_unknown_tape_is_one_line(library):
    result = admin('fault', library.root, 'tape-full', 'NOPE01L9', '--at', '1M', check=False)
    assert (result.returncode, result.stderr) == (
        1,
        "sim.tapelib: no tape 'NOPE01L9' in this library (tapes: TPN001L9, TPN002L9, NOBARCODE1, CLN001L1)\n",
    )


@pytest.mark.root
def test_show_describes_the_library(library):
    library.load_and_format()
    admin('fault', library.root, 'mount-fails', '--count', '2')
    lines = admin('show', library.root).stdout.splitlines()
    assert lines[1] == f'  drive 0 (10WT000000, {library.drive}): TPN001L9 from slot 1'
    assert '  tape TPN001L9: formatted, volume serial TPN001, index generation 1' in lines
    assert lines[-1] == '  fault: next 2 ltfs mount(s) fail'


@pytest.mark.root
def test_cleanup_ends_a_running_ltfs(library):
    library.load_and_format()
    library.mount()
    [pid] = ltfs_processes(library.mnt)
    result = admin('cleanup', library.root)
    assert result.stdout == f'drive 0: asked ltfs (pid {pid}) to unmount and exit\n'
    wait_for_exit(pid)
    assert not any(library.root in line for line in open('/proc/mounts'))
