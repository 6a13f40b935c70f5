"""The ltfs stand-in (sim/tapelib/ltfs.py, media.py): a mounted tape, its daemon until the index is
written, its refusals, and the sparse images behind it."""

import errno
import os
import signal
import subprocess

import pytest

from tests.sim.tapelib.conftest import admin, ltfs_processes, wait_for_exit, sense_block


@pytest.mark.root
def test_mount_write_until_full_unmount_and_remount(library):
    capacity = 16 * 1024 * 1024
    library.load_and_format()
    started = library.mount()
    assert started.stdout == ''
    assert started.stderr.splitlines()[-4].endswith('LTFS11031I Volume mounted successfully.')
    assert any(line.split()[1] == library.mnt for line in open('/proc/mounts'))
    stats = os.statvfs(library.mnt)
    assert 0.9 * capacity < stats.f_blocks * stats.f_frsize <= capacity
    assert 0.9 * capacity < stats.f_bavail * stats.f_frsize
    assert os.getxattr(library.mnt, 'user.ltfs.volumeSerial') == b'TPN001'
    payload = os.urandom(100_000)
    with open(f'{library.mnt}/first.bin', 'wb') as file:
        file.write(payload)
    written = 0
    with pytest.raises(OSError) as full, open(f'{library.mnt}/filler.bin', 'wb') as file:
        while True:
            file.write(b'\0' * 65536)
            file.flush()
            written += 65536
    assert full.value.errno == errno.ENOSPC
    assert 0.85 * capacity < written < capacity
    os.unlink(f'{library.mnt}/filler.bin')
    library.unmount_and_wait()
    assert not os.listdir(library.mnt)
    library.mount()
    with open(f'{library.mnt}/first.bin', 'rb') as file:
        assert file.read() == payload
    library.unmount_and_wait()


@pytest.mark.root
def test_ltfs_process_lives_until_umount_and_the_tape_cannot_move_meanwhile(make_library):
    library = make_library(write_seconds=1.0)
    library.load_and_format()
    library.mount()
    [pid] = ltfs_processes(library.mnt)
    with open(f'/proc/{pid}/comm') as comm:
        assert comm.read() == 'ltfs\n'
    mtx = f'{library.root}/bin/mtx'
    refused = library.mtx('unload')
    assert (refused.returncode, refused.stdout) == (1, 'Unloading drive 0 into Storage Element 1...')
    assert refused.stderr == (
        sense_block('Illegal Request', '53', '03') + f'{mtx}: MOVE MEDIUM from Element Address 256 to 4096 Failed\n'
    )
    subprocess.run(['umount', library.mnt], check=True)
    # umount has returned, but ltfs is still writing its index: the tape must not move yet
    assert library.mtx('unload').returncode == 1
    wait_for_exit(pid)
    assert library.mtx('unload').stdout == 'Unloading drive 0 into Storage Element 1...done\n'


def test_ltfs_refusals(library):
    no_tape = library.run('ltfs', '-o', f'devname={library.drive}', library.mnt)
    assert no_tape.returncode == 1
    assert [line.split(' ', 1)[1] for line in no_tape.stderr.splitlines()[-2:]] == [
        'LTFS12016E No medium present.',
        'LTFS14075E Cannot set up tape drive.',
    ]
    library.mtx('load', 2)
    unformatted = library.run('ltfs', '-o', f'devname={library.serial}', library.mnt)
    assert unformatted.returncode == 1
    assert unformatted.stderr.splitlines()[-2].endswith(
        'LTFS11009E Cannot read volume: failed to read partition labels.'
    )
    unknown = library.run('ltfs', '-o', 'devname=/dev/nst7', library.mnt)
    assert unknown.stderr.splitlines()[-1].endswith("LTFS10004E Cannot open device '/dev/nst7'.")
    nowhere = library.run('ltfs', '-o', f'devname={library.serial}', f'{library.root}/missing')
    assert (
        nowhere.stderr.splitlines()[-1] == f"fuse: bad mount point `{library.root}/missing': No such file or directory"
    )
    bad_option = library.run('ltfs', '-o', f'devname={library.serial},frobnicate', library.mnt)
    assert (bad_option.returncode, bad_option.stderr) == (1, "fuse: unknown option `frobnicate'\n")
    assert not ltfs_processes(library.mnt)


def test_device_list_names_every_drive_on_stderr_and_exits_1(make_library):
    library = make_library(drives=2)
    result = library.run('ltfs', '-o', 'device_list')
    assert (result.returncode, result.stdout) == (1, '')
    assert result.stderr.splitlines()[-3:] == [
        'Tape Device list:.',
        f'Device Name = {library.root}/dev/nst0 (0.0.0.0), Vendor ID = IBM     , Product ID = '
        'ULTRIUM-HH9     , Serial Number = 10WT000000, Product Name =[ULTRIUM-HH9].',
        f'Device Name = {library.root}/dev/nst1 (0.0.1.0), Vendor ID = IBM     , Product ID = '
        'ULTRIUM-HH9     , Serial Number = 10WT000010, Product Name =[ULTRIUM-HH9].',
    ]


@pytest.mark.root
def test_ltfs_killed_leaves_the_tape_locked_until_mounted_and_unmounted_again(library):
    library.load_and_format()
    library.mount()
    [pid] = ltfs_processes(library.mnt)
    os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid)
    assert library.mtx('unload').returncode == 1  # refused (53/03): the killed ltfs never wrote its index
    stale = library.run('ltfs', '-o', f'devname={library.serial}', library.mnt)
    assert stale.returncode == 1
    assert (
        stale.stderr.splitlines()[-1] == f"fuse: bad mount point `{library.mnt}': Transport endpoint is not connected"
    )
    subprocess.run(['umount', library.mnt], check=True)
    assert library.mtx('unload').returncode == 1  # the index is still not written
    library.mount()
    library.unmount_and_wait()
    assert library.mtx('unload').returncode == 0


@pytest.mark.root
def test_images_are_sparse(make_library):
    library = make_library(capacity='1G')
    library.load_and_format()
    image = f'{library.root}/tapes/TPN001L9.img'
    assert os.stat(image).st_size == 1024**3
    assert os.stat(image).st_blocks * 512 < 16 * 1024**2
    admin('fault', library.root, 'tape-full', 'TPN001L9', '--at', '1M')
    library.mount()  # the ballast behind the tape-full fault is allocated, never written
    library.unmount_and_wait()
    assert os.stat(image).st_blocks * 512 < 16 * 1024**2
