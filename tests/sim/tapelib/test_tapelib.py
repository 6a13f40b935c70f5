"""The virtual tape library (sim/tapelib): its stand-ins run as real processes, as pytarchive runs them."""

import errno
import os
import select
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

PROJECT = os.path.abspath(os.path.join(os.path.dirname(__file__), *['..'] * 3))
PAD = 36      # volume tags are space-padded to 36 characters


def admin(*arguments, check=True):
    result = subprocess.run([sys.executable, '-m', 'sim.tapelib', *map(str, arguments)],
                            cwd=PROJECT, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


class Library:
    """A library made by `init`, and shortcuts to run its stand-ins."""

    def __init__(self, root, config):
        self.root = str(root)
        self.config = config
        self.changer = f'{self.root}/dev/sch0'
        self.drive = f'{self.root}/dev/nst0'
        self.serial = '10WT000000'
        self.mnt = f'{self.root}/mnt'

    def run(self, command, *arguments, env=None):
        return subprocess.run([f'{self.root}/bin/{command}', *map(str, arguments)],
                              capture_output=True, text=True, env=env, timeout=60)

    def mtx(self, *arguments):
        return self.run('mtx', '-f', self.changer, *arguments)

    def status(self):
        result = self.mtx('status')
        assert result.returncode == 0, result.stderr
        return result.stdout

    def load_and_format(self, slot=1):
        assert self.mtx('load', slot).returncode == 0
        result = self.run('mkltfs', '-d', self.drive)
        assert result.returncode == 0, result.stderr

    def mount(self):
        result = self.run('ltfs', '-o', f'devname={self.serial}', self.mnt)
        assert result.returncode == 0, result.stderr
        return result

    def unmount_and_wait(self):
        """What pytarchive must do: umount, then wait for the ltfs process to exit."""
        pids = ltfs_processes(self.mnt)
        assert len(pids) == 1
        subprocess.run(['umount', self.mnt], check=True)
        wait_for_exit(pids[0])


@pytest.fixture
def make_library(tmp_path):
    made = []

    def make(tapes='TPN001L9,TPN002L9,-,CLN001L1', slots=6, import_export=1, capacity='16M',
             drives=1, write_seconds=0.2):
        root = tmp_path / f'library{len(made)}'
        result = admin('init', root, '--slots', slots, '--drives', drives, '--tapes', tapes,
                       '--capacity', capacity, '--import-export', import_export,
                       '--index-write-seconds', write_seconds)
        made.append(Library(root, result.stdout))
        return made[-1]

    yield make
    for library in made:
        admin('cleanup', library.root, check=False)
    left = [line.split()[1] for line in open('/proc/self/mounts') if str(tmp_path) in line]
    for mountpoint in reversed(left):
        subprocess.run(['umount', '-l', mountpoint])
    assert not left, f'mounts left behind: {left}'


@pytest.fixture
def library(make_library):
    return make_library()


def ltfs_processes(mountpoint):
    """The ltfs serving mountpoint, found as on a real host: named ltfs, the mount point among its arguments."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as file:
                arguments = file.read().split(b'\0')
        except OSError:
            continue
        if os.path.basename(arguments[0]) == b'ltfs' and os.fsencode(mountpoint) in arguments:
            pids.append(int(entry))
    return pids


def wait_for_exit(pid, timeout=15):
    """A pidfd turns readable when the process ends, reaped or not (orphans may stay zombies)."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([descriptor], [], [], timeout)[0], f'ltfs {pid} still running'
    finally:
        os.close(descriptor)


def tag(barcode):
    return barcode.ljust(PAD)


def sense_block(key, asc, ascq):
    return ''.join(f'mtx: Request Sense: {line}\n' for line in [
        'Long Report=yes', 'Valid Residual=no', 'Error Code=70 (Current)', f'Sense Key={key}',
        'FileMark=no', 'EOM=no', 'ILI=no', f'Additional Sense Code = {asc}',
        f'Additional Sense Qualifier = {ascq}', 'BPV=no', 'Error in CDB=no', 'SKSV=no'])


# --- init --------------------------------------------------------------------------------------

def test_init_prints_the_pytarchive_config_and_makes_the_executables(library):
    root = library.root
    assert library.config.splitlines() == [
        '[General]', f'tape_max_size = {16 * 1024 * 1024}', '', '[Device]',
        f'library = {root}/dev/sch0', 'drive_serial = 10WT000000', 'drive_index = 0',
        f'drive_device = {root}/dev/nst0', f'mountpoint = {root}/mnt',
        f'mtx = {root}/bin/mtx', f'tapeinfo = {root}/bin/tapeinfo', f'mkltfs = {root}/bin/mkltfs',
        f'ltfs = {root}/bin/ltfs', f'umount = {shutil.which("umount")}']
    for command in ('mtx', 'tapeinfo', 'mkltfs', 'ltfs'):
        assert os.access(f'{root}/bin/{command}', os.X_OK)


def test_init_refuses_bad_input_in_one_line(tmp_path, library):
    again = admin('init', library.root, '--slots', 2, '--tapes', 'A', '--capacity', '16M', check=False)
    assert again.returncode == 1
    assert again.stderr == (f'sim.tapelib: {library.root} already holds a virtual library: remove it first '
                            f'(python -m sim.tapelib cleanup {library.root}; rm -r {library.root})\n')
    crowded = admin('init', tmp_path / 'x', '--slots', 1, '--tapes', 'A,B', '--capacity', '16M', check=False)
    assert (crowded.returncode, crowded.stderr) == (1, 'sim.tapelib: 2 tapes do not fit into 1 slots\n')
    twice = admin('init', tmp_path / 'y', '--slots', 3, '--tapes', 'A,A', '--capacity', '16M', check=False)
    assert (twice.returncode, twice.stderr) == (1, 'sim.tapelib: barcode given twice: A\n')


# --- mtx -----------------------------------------------------------------------------------------

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
        + '      Storage Element 6 IMPORT/EXPORT:Empty\n')
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
        + f'      Storage Element 6 IMPORT/EXPORT:Full :VolumeTag={tag("TPN001L9")}\n')


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
    assert both.stdout == ('Loading media from Storage Element 1 into drive 0...done\n'
                           'Unloading drive 0 into Storage Element 5...done\n')
    assert f'      Storage Element 5:Full :VolumeTag={tag("TPN001L9")}\n' in library.status()
    assert '      Storage Element 1:Empty\n' in library.status()


def test_mtx_errors_are_the_real_messages_and_change_nothing(library):
    mtx = f'{library.root}/bin/mtx'        # mtx prefixes its errors with the name it was called by
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
        1, 'Loading media from Storage Element 5 into drive 0...',
        f'{mtx}: Source Element Address 4100 is Empty\n')
    assert library.mtx('unload', 5).stderr == f'{mtx}: Data Transfer Element 0 is Empty\n'
    assert library.mtx('unload').stderr == f'{mtx}: No Source for tape in drive 0!\n'
    wrong = library.run('mtx', '-f', '/dev/nonexistent-changer', 'status')
    assert (wrong.returncode, wrong.stderr) == (
        1, f"{mtx}: cannot open SCSI device '/dev/nonexistent-changer' - No such file or directory\n")
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
        f'      Storage Element {slot}:Full :VolumeTag={tag(f"A{slot}")}' for slot in range(1, 7)]


# --- tapeinfo ------------------------------------------------------------------------------------

def test_tapeinfo_reports_the_drive_serial_and_the_medium(library):
    empty = library.run('tapeinfo', '-f', library.drive)
    assert empty.returncode == 0
    assert empty.stdout.splitlines()[:11] == [
        'Product Type: Tape Drive', "Vendor ID: 'IBM     '", "Product ID: 'ULTRIUM-HH9     '",
        "Revision: 'Q3G3'", 'Attached Changer API: No', "SerialNumber: '10WT000000'", 'MinBlock: 1',
        'MaxBlock: 8388608', 'SCSI ID: 0', 'SCSI LUN: 0', 'Ready: no']
    assert 'Medium Type: Not Loaded\n' in empty.stdout
    library.mtx('load', 1)
    loaded = library.run('tapeinfo', '-f', library.drive).stdout
    assert 'Ready: yes\n' in loaded and 'Density Code: 0x60\n' in loaded
    missing = library.run('tapeinfo', '-f', '/dev/nst9')
    assert (missing.returncode, missing.stderr) == (
        1, f"{library.root}/bin/tapeinfo: cannot open SCSI device '/dev/nst9' - No such file or directory\n")


# --- mkltfs --------------------------------------------------------------------------------------

def test_mkltfs_formats_refuses_to_reformat_without_force_and_needs_a_tape(library):
    no_tape = library.run('mkltfs', '-d', library.drive)
    assert no_tape.returncode == 8
    assert no_tape.stderr.endswith('LTFS11330I Loading cartridge.\nLTFS12016E No medium present.\n'
                                   'LTFS15044E Cannot set up tape device.\nLTFS15023I Formatting failed.\n')
    library.mtx('load', 1)
    first = library.run('mkltfs', '-d', library.serial, '-n', 'archive one', '-c')
    assert first.returncode == 0
    assert first.stdout == ''
    assert first.stderr.splitlines()[-1] == 'LTFS15024I Medium formatted successfully.'
    again = library.run('mkltfs', '-d', library.drive)
    assert again.returncode == 16
    assert again.stderr.endswith('LTFS15047E Medium is already formatted (0).\n'
                                 'LTFS15048I Need to specify -f or --force option to format this medium.\n'
                                 'LTFS15023I Formatting failed.\n')
    bad_serial = library.run('mkltfs', '-d', library.drive, '-s', 'abc')
    assert bad_serial.returncode == 16
    assert bad_serial.stderr.startswith('LTFS15029E Tape serial must be 6 characters.\n')


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


# --- ltfs ----------------------------------------------------------------------------------------

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
    assert refused.stderr == (sense_block('Illegal Request', '53', '03')
                              + f'{mtx}: MOVE MEDIUM from Element Address 256 to 4096 Failed\n')
    subprocess.run(['umount', library.mnt], check=True)
    # umount has returned, but ltfs is still writing its index: the tape must not move yet
    assert library.mtx('unload').returncode == 1
    wait_for_exit(pid)
    assert library.mtx('unload').stdout == 'Unloading drive 0 into Storage Element 1...done\n'


def test_ltfs_refusals(library):
    no_tape = library.run('ltfs', '-o', f'devname={library.drive}', library.mnt)
    assert no_tape.returncode == 1
    assert [line.split(' ', 1)[1] for line in no_tape.stderr.splitlines()[-2:]] == [
        'LTFS12016E No medium present.', 'LTFS14075E Cannot set up tape drive.']
    library.mtx('load', 2)
    unformatted = library.run('ltfs', '-o', f'devname={library.serial}', library.mnt)
    assert unformatted.returncode == 1
    assert unformatted.stderr.splitlines()[-2].endswith(
        'LTFS11009E Cannot read volume: failed to read partition labels.')
    unknown = library.run('ltfs', '-o', 'devname=/dev/nst7', library.mnt)
    assert unknown.stderr.splitlines()[-1].endswith("LTFS10004E Cannot open device '/dev/nst7'.")
    nowhere = library.run('ltfs', '-o', f'devname={library.serial}', f'{library.root}/missing')
    assert nowhere.stderr.splitlines()[-1] == f"fuse: bad mount point `{library.root}/missing': No such file or directory"
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
        'ULTRIUM-HH9     , Serial Number = 10WT000010, Product Name =[ULTRIUM-HH9].']


def test_ltfs_killed_leaves_the_tape_locked_until_mounted_and_unmounted_again(library):
    library.load_and_format()
    library.mount()
    [pid] = ltfs_processes(library.mnt)
    os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid)
    assert library.mtx('unload').returncode == 1          # refused (53/03): the killed ltfs never wrote its index
    stale = library.run('ltfs', '-o', f'devname={library.serial}', library.mnt)
    assert stale.returncode == 1
    assert stale.stderr.splitlines()[-1] == \
        f"fuse: bad mount point `{library.mnt}': Transport endpoint is not connected"
    subprocess.run(['umount', library.mnt], check=True)
    assert library.mtx('unload').returncode == 1          # the index is still not written
    library.mount()
    library.unmount_and_wait()
    assert library.mtx('unload').returncode == 0


def test_cleanup_ends_a_running_ltfs(library):
    library.load_and_format()
    library.mount()
    [pid] = ltfs_processes(library.mnt)
    result = admin('cleanup', library.root)
    assert result.stdout == f'drive 0: asked ltfs (pid {pid}) to unmount and exit\n'
    wait_for_exit(pid)
    assert not any(library.root in line for line in open('/proc/mounts'))


def test_images_are_sparse(make_library):
    library = make_library(capacity='1G')
    library.load_and_format()
    image = f'{library.root}/tapes/TPN001L9.img'
    assert os.stat(image).st_size == 1024 ** 3
    assert os.stat(image).st_blocks * 512 < 16 * 1024 ** 2
    admin('fault', library.root, 'tape-full', 'TPN001L9', '--at', '1M')
    library.mount()         # the ballast behind the tape-full fault is allocated, never written
    library.unmount_and_wait()
    assert os.stat(image).st_blocks * 512 < 16 * 1024 ** 2


# --- faults --------------------------------------------------------------------------------------

def test_mtx_error_fault_fails_the_next_moves_then_is_used_up(library):
    result = admin('fault', library.root, 'mtx-error', '--sense-key', 'Illegal Request',
                   '--asc', '53', '--ascq', '03', '--count', '2')
    assert result.stdout == 'next 2 mtx move(s) fail: Illegal Request, ASC 53, ASCQ 03\n'
    mtx = f'{library.root}/bin/mtx'
    for _ in range(2):
        failed = library.mtx('load', 1)
        assert (failed.returncode, failed.stdout, failed.stderr) == (
            1, 'Loading media from Storage Element 1 into drive 0...',
            sense_block('Illegal Request', '53', '03')
            + f'{mtx}: MOVE MEDIUM from Element Address 4096 to 256 Failed\n')
    assert library.mtx('load', 1).returncode == 0


def test_tape_full_fault_stops_writes_at_that_many_bytes(library):
    library.load_and_format()
    library.mount()
    with open(f'{library.mnt}/before.bin', 'wb') as file:
        file.write(os.urandom(1024 * 1024))
    assert admin('fault', library.root, 'tape-full', 'TPN001L9', '--at', '3M').stdout == \
        f'tape TPN001L9 is full at {3 * 1024 * 1024} bytes of data\n'
    stats = os.statvfs(library.mnt)
    assert abs(stats.f_bavail * stats.f_frsize - 2 * 1024 * 1024) < 64 * 1024
    with pytest.raises(OSError) as full, open(f'{library.mnt}/after.bin', 'wb') as file:
        for _ in range(100):
            file.write(b'x' * 65536)
            file.flush()
    assert full.value.errno == errno.ENOSPC
    library.unmount_and_wait()
    library.mount()          # the limit holds across mounts
    assert os.statvfs(library.mnt).f_bavail * os.statvfs(library.mnt).f_frsize < 64 * 1024
    library.unmount_and_wait()


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
    admin('fault', library.root, 'flip-byte', 'TPN001L9', '/folder/file.txt')   # while mounted
    with open(f'{library.mnt}/folder/file.txt', 'rb') as file:
        assert file.read() == b'0123456789'
    outside = admin('fault', library.root, 'flip-byte', 'TPN001L9', '../../state.json', check=False)
    assert (outside.returncode, outside.stderr) == (1, 'sim.tapelib: ../../state.json is outside the tape\n')
    library.unmount_and_wait()


def test_mount_fails_fault_fails_the_next_mount_only(library):
    library.load_and_format()
    admin('fault', library.root, 'mount-fails')
    failed = library.run('ltfs', '-o', f'devname={library.serial}', library.mnt)
    assert failed.returncode == 1
    assert [line.split(' ', 1)[1] for line in failed.stderr.splitlines()[-2:]] == [
        'LTFS11009E Cannot read volume: failed to read partition labels.',
        'LTFS14013E Cannot mount the volume from device.']
    assert not ltfs_processes(library.mnt)
    library.mount()
    library.unmount_and_wait()


def test_fault_on_an_unknown_tape_is_one_line(library):
    result = admin('fault', library.root, 'tape-full', 'NOPE01L9', '--at', '1M', check=False)
    assert (result.returncode, result.stderr) == (
        1, "sim.tapelib: no tape 'NOPE01L9' in this library (tapes: TPN001L9, TPN002L9, NOBARCODE1, CLN001L1)\n")


def test_show_describes_the_library(library):
    library.load_and_format()
    admin('fault', library.root, 'mount-fails', '--count', '2')
    lines = admin('show', library.root).stdout.splitlines()
    assert lines[1] == f'  drive 0 (10WT000000, {library.drive}): TPN001L9 from slot 1'
    assert '  tape TPN001L9: formatted, volume serial TPN001, index generation 1' in lines
    assert lines[-1] == '  fault: next 2 ltfs mount(s) fail'
