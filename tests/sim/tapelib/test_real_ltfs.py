"""The reference LTFS built by `make ltfs` (build/ltfs), on cartridges of its `file` tape backend made by
sim/tapelib/cartridge.py: what the real mkltfs and ltfs do, which the tape library's rig relies on."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from sim.tapelib import cartridge

pytestmark = pytest.mark.root  # a FUSE mount

PROJECT = Path(__file__).resolve().parents[3]
LTFS = PROJECT / 'build' / 'ltfs'
SERIAL = '10WT000001'


@pytest.fixture
def bay(tmp_path):
    """A drive file's folder with a 200 MB cartridge TPN001L9 loaded, and an empty mount point."""
    assert (LTFS / '.built').exists(), 'the reference LTFS is not built: run `make ltfs`'
    library = tmp_path / 'library'
    library.mkdir()
    drive = cartridge.drive_file(library, SERIAL)
    cartridge.load(drive, cartridge.new_cartridge(library, 'TPN001L9', capacity_mb=200))
    mountpoint = tmp_path / 'mnt'
    mountpoint.mkdir()
    yield drive, mountpoint
    if is_mounted(mountpoint):
        subprocess.run(['umount', str(mountpoint)], timeout=30)
        wait_for_ltfs_to_exit(drive)


def run(tool, *args):
    # Every LTFS command under a timeout: on a malformed drive file the backend can spin for ever.
    return subprocess.run([str(LTFS / 'bin' / tool), *args], capture_output=True, text=True, timeout=120)


def is_mounted(mountpoint):
    with open('/proc/self/mounts') as mounts:
        return any(line.split()[1] == str(mountpoint) for line in mounts)


def ltfs_pids(drive):
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                if f'devname={drive}'.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def wait_for_ltfs_to_exit(drive, timeout=60):
    deadline = time.monotonic() + timeout
    while ltfs_pids(drive):
        assert time.monotonic() < deadline, 'ltfs did not write its index and exit after umount'
        time.sleep(0.1)


def mount(drive, mountpoint, *options):
    return run('ltfs', '-o', ','.join([f'devname={drive}', *options]), str(mountpoint))


def test_format_mount_write_unmount_and_read_back(bay):
    drive, mountpoint = bay
    formatted = run('mkltfs', '-d', str(drive), '-s', 'TPN001', '-n', 'TPN001L9')
    assert (
        formatted.returncode == 0 and 'LTFS15024I Medium formatted successfully' in formatted.stderr
    )  # LTFS logs to stderr
    assert mount(drive, mountpoint).returncode == 0 and is_mounted(mountpoint)
    (mountpoint / 'folder').mkdir()
    (mountpoint / 'folder' / 'a.txt').write_text('archived\n')
    volume = os.statvfs(mountpoint)
    assert volume.f_bsize == volume.f_frsize == 512 * 1024  # the volume's block size
    subprocess.run(['umount', str(mountpoint)], check=True, timeout=30)
    wait_for_ltfs_to_exit(drive)  # the index is written after umount returns, by the ltfs process

    assert mount(drive, mountpoint, 'ro').returncode == 0
    assert (mountpoint / 'folder' / 'a.txt').read_text() == 'archived\n'


def test_an_unformatted_cartridge_is_told_by_its_message_id(bay):
    drive, mountpoint = bay
    refused = mount(drive, mountpoint)
    assert refused.returncode == 1 and not is_mounted(mountpoint)
    assert 'LTFS17168E' in refused.stderr  # medium is not partitioned


def test_a_refused_fuse_mount_exits_0_with_nothing_mounted(bay):
    drive, mountpoint = bay
    assert run('mkltfs', '-d', str(drive), '-s', 'TPN001', '-n', 'TPN001L9').returncode == 0
    (mountpoint / 'left over').write_text('')  # FUSE refuses a mount point that is not empty
    refused = mount(drive, mountpoint)
    assert refused.returncode == 0 and not is_mounted(mountpoint)  # only the mount table tells
    wait_for_ltfs_to_exit(drive)


def test_a_byte_flipped_in_a_data_record_is_read_back_flipped(bay):
    drive, mountpoint = bay
    assert run('mkltfs', '-d', str(drive), '-s', 'TPN001', '-n', 'TPN001L9').returncode == 0
    assert mount(drive, mountpoint).returncode == 0
    (mountpoint / 'data.bin').write_bytes(b'A' * 4096)
    subprocess.run(['umount', str(mountpoint)], check=True, timeout=30)
    wait_for_ltfs_to_exit(drive)
    folder = drive.parent / cartridge.loaded(drive)
    [record] = [p for p in folder.iterdir() if p.name.endswith('_R') and b'A' * 4096 in p.read_bytes()]
    content = bytearray(record.read_bytes())
    content[content.index(b'A' * 4096)] = ord('B')
    record.write_bytes(bytes(content))

    assert mount(drive, mountpoint, 'ro').returncode == 0
    assert (mountpoint / 'data.bin').read_bytes() == b'B' + b'A' * 4095


def test_unload_empties_the_drive_and_load_names_the_cartridge(tmp_path):
    drive = cartridge.drive_file(tmp_path, SERIAL)
    tape = cartridge.new_cartridge(tmp_path, 'TPN002L9', capacity_mb=160)
    assert cartridge.loaded(drive) is None
    cartridge.load(drive, tape)
    assert cartridge.loaded(drive) == 'TPN002L9' and len(drive.read_bytes()) == cartridge.NAME_FIELD
    cartridge.unload(drive)
    assert not drive.exists() and cartridge.loaded(drive) is None
    with pytest.raises(ValueError, match='at least 160 MB'):
        cartridge.new_cartridge(tmp_path, 'TPN003L9', capacity_mb=100)
