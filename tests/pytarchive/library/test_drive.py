"""pytarchive.library.Drive on the virtual library (sim/tapelib: the real mtx, tapeinfo and LTFS), and the
wait for the ltfs process."""

import errno
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from pytarchive.library import AlreadyFormatted, Drive, DriveError, MtxError
from pytarchive.library.errors import IndexBehind, Unformatted
from pytarchive.library.processes import ltfs_processes, wait_for_exit
from tests.pytarchive.library.virtual_library import VirtualLibrary

pytestmark = pytest.mark.root  # the virtual library mounts its tapes
MIB = 1024 * 1024


@pytest.fixture
def library(tmp_path):
    virtual = VirtualLibrary(tmp_path / 'library')
    yield virtual
    virtual.cleanup()


@pytest.fixture
def loaded(library):
    """TPN001L9 in the drive, formatted."""
    library.changer().load('TPN001L9')
    library.drive().format('TPN001', 'TPN001L9')
    return library


class TestDriveOnTheVirtualLibrary:
    def test_format_mount_write_space_unmount_and_the_file_is_there_after_a_remount(self, loaded):
        drive = loaded.drive()
        assert drive.check_serial() == '10WT000000'
        drive.mount()
        assert drive.is_mounted()
        total, free = drive.space()
        assert 0.9 * loaded.capacity < total <= loaded.capacity and free <= total
        payload = os.urandom(8 * MIB)
        with open(os.path.join(loaded.mountpoint, 'archive.bin'), 'wb') as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        total_after, free_after = drive.space()
        assert total_after == total and free - free_after >= 8 * MIB
        drive.unmount()
        assert not drive.is_mounted() and ltfs_processes(loaded.mountpoint) == []
        # the tape travels back to its slot and into the drive again before the remount
        changer = loaded.changer()
        assert changer.unload() == 1
        changer.load('TPN001L9')
        drive.mount()
        with open(os.path.join(loaded.mountpoint, 'archive.bin'), 'rb') as file:
            assert file.read() == payload
        drive.unmount()

    def test_unmount_waits_for_ltfs_to_write_the_index_so_the_tape_can_move_at_once(self, loaded):
        drive = loaded.drive()
        drive.mount()
        [ltfs] = ltfs_processes(loaded.mountpoint)
        born = _started(ltfs)
        os.kill(ltfs, signal.SIGSTOP)  # a drive slow to write the index: ltfs lives on after umount
        threading.Timer(2, os.kill, (ltfs, signal.SIGCONT)).start()
        started = time.monotonic()
        drive.unmount()
        assert time.monotonic() - started >= 1.8  # the index write, not just umount
        _ended(ltfs, born)
        assert loaded.changer().unload() == 1  # the library lets the tape go only once ltfs is done

    def test_the_library_keeps_the_tape_while_ltfs_holds_the_drive_and_unmount_waits_for_it(self, loaded):
        changer, drive = loaded.changer(), loaded.drive()
        drive.mount()
        [ltfs] = ltfs_processes(loaded.mountpoint)
        born = _started(ltfs)
        with pytest.raises(MtxError) as caught:
            changer.unload()
        assert (caught.value.sense_key, caught.value.asc, caught.value.ascq) == ('Illegal Request', '53', '03')
        assert caught.value.status_after.drives[0].barcode == 'TPN001L9'  # re-read: still in the drive
        drive.unmount()  # umount, then the wait for ltfs to write its index and let go of the drive
        assert ltfs_processes(loaded.mountpoint) == []
        _ended(ltfs, born)
        assert changer.unload() == 1

    def test_formatting_a_formatted_tape_needs_force_and_force_erases_it(self, loaded):
        drive = loaded.drive()
        drive.mount()
        with open(os.path.join(loaded.mountpoint, 'old.txt'), 'w') as file:
            file.write('old')
        drive.unmount()
        with pytest.raises(AlreadyFormatted) as caught:
            drive.format('TPN001', 'TPN001L9')
        assert str(caught.value) == (
            f'{loaded.device["mkltfs"]} -d {loaded.device["drive_device"]} -s TPN001 -n TPN001L9: the tape is '
            'already formatted (LTFS15047E); formatting it again with force erases everything on it'
        )
        drive.format('TPN001', 'TPN001L9', force=True)
        drive.mount()
        assert not os.path.exists(os.path.join(loaded.mountpoint, 'old.txt'))
        drive.unmount()

    def test_a_drive_with_another_serial_is_refused(self, library):
        with pytest.raises(DriveError) as caught:
            library.drive(serial='10WT999999').check_serial()
        assert str(caught.value) == (
            f'{library.device["drive_device"]} is drive 10WT000000, not the configured '
            'drive 10WT999999 ([Device] drive_serial); refusing to use it: check '
            'drive_device and drive_index'
        )

    def test_a_damaged_volume_quotes_every_ltfs_error_and_leaves_nothing_mounted(self, loaded):
        loaded.fault('damage', 'TPN001L9')
        drive = loaded.drive()
        with pytest.raises(DriveError) as caught:
            drive.mount()
        message = str(caught.value)
        assert 'LTFS11009E Cannot read volume: failed to read partition labels.' in message
        assert message.endswith('LTFS14013E Cannot mount the volume.')  # the last line too, not just three
        assert 'LTFS30061E' not in message  # the backend's noise, printed on success as well
        assert not isinstance(caught.value, (Unformatted, IndexBehind)) and '\n' not in message
        assert not drive.is_mounted()
        loaded.fault('clear')
        drive.mount()
        drive.unmount()

    def test_mount_without_a_tape_and_of_an_unformatted_tape(self, library):
        drive = library.drive()
        with pytest.raises(DriveError, match='LTFS'):
            drive.mount()
        library.changer().load('TPN002L9')
        with pytest.raises(
            Unformatted, match='the tape is not formatted: .*LTFS17168E Cannot read volume: medium is not partitioned'
        ):
            drive.mount()

    def test_a_mount_that_ltfs_refuses_with_exit_0_is_a_failure(self, loaded):
        # FUSE refuses a mount point that is not empty after LTFS has read the volume: ltfs exits 0
        os.makedirs(loaded.mountpoint, exist_ok=True)
        with open(os.path.join(loaded.mountpoint, 'left behind'), 'w'):
            pass
        drive = loaded.drive()
        with pytest.raises(DriveError, match=' exited 0 but .* is not mounted'):
            drive.mount()
        assert not drive.is_mounted()

    def test_a_volume_left_by_a_killed_ltfs_needs_ltfsck_which_drops_what_came_after_the_index(self, loaded):
        drive = loaded.drive()
        drive.mount()
        with open(os.path.join(loaded.mountpoint, 'kept.bin'), 'wb') as file:
            file.write(b'kept' * 1000)
        drive.unmount()  # the index is written: kept.bin is safe
        drive.mount()
        with open(os.path.join(loaded.mountpoint, 'lost.bin'), 'wb') as file:
            file.write(os.urandom(4 * MIB))
            os.fsync(file.fileno())
        for pid in ltfs_processes(loaded.mountpoint):
            os.kill(pid, signal.SIGKILL)
        wait_for_exit(ltfs_processes(loaded.mountpoint), loaded.mountpoint, 10)
        drive.unmount()  # the stale mount a dead ltfs leaves
        with pytest.raises(IndexBehind) as caught:
            drive.mount()
        assert 'LTFS11220E Medium check failed: extra blocks detected. Run ltfsck.' in str(caught.value)
        said = drive.check_volume()
        assert 'LTFS16022I Volume is consistent.' in said
        drive.mount()
        assert sorted(os.listdir(loaded.mountpoint)) == ['kept.bin']
        drive.unmount()

    def test_mount_twice_is_refused_and_unmount_of_nothing_is_harmless(self, loaded):
        drive = loaded.drive()
        drive.unmount()
        drive.mount()
        with pytest.raises(DriveError, match=f'^{loaded.mountpoint} is already mounted; unmount it first$'):
            drive.mount()
        with pytest.raises(DriveError, match='refusing to format .*: a volume is mounted on'):
            drive.format('TPN001', 'TPN001L9', force=True)
        drive.unmount()
        drive.unmount()
        with pytest.raises(DriveError, match=f'no volume mounted on {loaded.mountpoint}: cannot read its capacity'):
            drive.space()

    def test_a_full_tape_gives_enospc_and_its_space_never_comes_back(self, library):
        library.fault('tape-full', 'TPN001L9', '--at', '160M')  # the smallest cartridge LTFS writes on
        library.changer().load('TPN001L9')
        drive = library.drive()
        drive.format('TPN001', 'TPN001L9')
        drive.mount()
        total, free = drive.space()
        assert os.statvfs(library.mountpoint).f_frsize == 512 * 1024  # LTFS's block size
        assert 0.92 < total / (160 * MIB) < 0.93  # the index partition takes the rest
        with pytest.raises(OSError) as caught:
            with open(os.path.join(library.mountpoint, 'big.bin'), 'wb') as file:
                for _ in range(200):
                    file.write(os.urandom(MIB))
                os.fsync(file.fileno())
        assert caught.value.errno == errno.ENOSPC
        os.unlink(os.path.join(library.mountpoint, 'big.bin'))
        assert drive.space()[1] == 0  # deleting reclaims nothing on a tape
        drive.unmount()

    def test_bad_volume_serial_is_refused_before_running_mkltfs(self, library):
        with pytest.raises(DriveError, match="volume serial 'tpn1' must be 6 characters A-Z or 0-9"):
            library.drive().format('tpn1', 'x')


class TestCommandsThatCannotRun:
    def test_missing_tapeinfo(self, tmp_path):
        drive = Drive(
            mkltfs=['mkltfs'],
            ltfs=['ltfs'],
            tapeinfo=[str(tmp_path / 'tapeinfo')],
            umount=['umount'],
            device='/dev/nst0',
            serial='10WT000000',
            mountpoint=str(tmp_path / 'mnt'),
        )
        with pytest.raises(DriveError) as caught:
            drive.check_serial()
        assert str(caught.value) == (
            f'{tmp_path}/tapeinfo -f /dev/nst0: {tmp_path}/tapeinfo not found '
            '(check the command path in the [Device] config)'
        )

    def test_hung_ltfs_is_killed_after_the_timeout(self, tmp_path):
        hung = tmp_path / 'ltfs'
        hung.write_text(f'#!{sys.executable}\nimport time\ntime.sleep(30)\n')
        hung.chmod(0o755)
        drive = Drive(
            mkltfs=['mkltfs'],
            ltfs=[str(hung)],
            tapeinfo=['tapeinfo'],
            umount=['umount'],
            device='/dev/nst0',
            serial='10WT000000',
            mountpoint=str(tmp_path / 'mnt'),
            timeout=0.5,
        )
        with pytest.raises(DriveError, match=r'sync_type=time@5 .*/mnt: did not finish within 0.5 s and was killed'):
            drive.mount()


# -- finding and waiting for the ltfs process, without a library ---------------------------------------


def _ended(pid, born):
    """Assert the process has exited: gone, a zombie, or its pid given to a later process (pid_max
    may be 32768). The kernel signals an exit (the pidfd unmount waits on) with the files closed, a
    moment before /proc shows a zombie: a fresh-clone run read 'R' in that moment, so look again."""
    deadline = time.monotonic() + 5
    while _started(pid) == born and _state(pid) not in ('Z', 'X'):
        assert time.monotonic() < deadline, _state(pid)
        time.sleep(0.01)


def _state(pid):
    """The process's state letter ('R', 'S', 'Z'...); 'X' once the pid is free."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().rsplit(')', 1)[1].split()[0]
    except FileNotFoundError:
        return 'X'


def _started(pid):
    """The process's start time (clock ticks after boot), None once the pid is free: tells a pid's
    process from a later one given the same pid."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().rsplit(')', 1)[1].split()[19]
    except FileNotFoundError:
        return None


def _process(*args, seconds=30, cwd=None):
    return subprocess.Popen([sys.executable, '-c', f'import time; time.sleep({seconds})', *args], cwd=cwd)


@pytest.fixture
def processes():
    started = []
    yield lambda *args, **kwargs: started.append(_process(*args, **kwargs)) or started[-1]
    for process in started:
        process.kill()
        process.wait()


class TestLtfsProcess:
    def test_found_by_ltfs_in_its_command_line_and_the_mount_point_among_its_arguments(self, tmp_path, processes):
        mountpoint = tmp_path / 'mnt'
        ltfs = processes('sim.tapelib.ltfs', '-o', 'devname=/dev/nst0', str(mountpoint))
        relative = processes('ltfs', 'mnt', cwd=tmp_path)
        processes('ltfs', str(tmp_path / 'elsewhere'))
        processes('not-it', str(mountpoint))
        _wait_until_started(4)
        assert sorted(ltfs_processes(str(mountpoint) + '/')) == sorted([ltfs.pid, relative.pid])

    def test_a_mount_point_named_ltfs_alone_does_not_make_a_process_ltfs(self, tmp_path, processes):
        mountpoint = tmp_path / 'ltfs'
        processes('umount', str(mountpoint))
        served = processes('/usr/local/bin/ltfs', str(mountpoint))
        _wait_until_started(2)
        assert ltfs_processes(str(mountpoint)) == [served.pid]

    def test_wait_returns_when_the_process_exits_not_after_a_fixed_time(self, tmp_path, processes):
        mountpoint = str(tmp_path / 'mnt')
        short = processes('ltfs', mountpoint, seconds=0.5)
        _wait_until_started(1)
        born = _started(short.pid)
        started = time.monotonic()
        assert wait_for_exit([short.pid], mountpoint, timeout=20) == []
        assert time.monotonic() - started < 5
        _ended(short.pid, born)  # our child, not reaped yet: a zombie, which has exited all the same
        assert _state(short.pid) == 'Z'

    def test_wait_gives_up_after_the_timeout_and_names_what_still_runs(self, tmp_path, processes):
        mountpoint = str(tmp_path / 'mnt')
        stuck = processes('ltfs', mountpoint)
        _wait_until_started(1)
        started = time.monotonic()
        assert wait_for_exit([stuck.pid], mountpoint, timeout=0.5) == [stuck.pid]
        assert 0.4 < time.monotonic() - started < 5

    def test_unmount_that_times_out_says_not_to_move_the_tape(self, tmp_path, processes):
        mountpoint = tmp_path / 'mnt'
        mountpoint.mkdir()
        stuck = processes('ltfs', str(mountpoint))
        _wait_until_started(1)
        drive = Drive(
            mkltfs=['mkltfs'],
            ltfs=['ltfs'],
            tapeinfo=['tapeinfo'],
            umount=['umount'],
            device='/dev/nst0',
            serial='10WT000000',
            mountpoint=str(mountpoint),
            unmount_timeout=0.3,
        )
        with pytest.raises(DriveError) as caught:
            drive.unmount()  # nothing mounted, but an ltfs for the mount point still runs
        assert str(caught.value) == (
            f'ltfs (pid {stuck.pid}) for {mountpoint} is still running 0.3 s after umount '
            '(writing the index?); do not move the tape: wait, then unmount again'
        )


def _wait_until_started(count):
    """Until the test's sleeping children have exec'd (their command line is the python one)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = [pid for pid in _children() if 'time.sleep' in _cmdline(pid)]
        if len(children) >= count:
            return
        time.sleep(0.01)
    raise AssertionError('test processes did not start')


def _children():
    me = str(os.getpid())
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as stat:
                    if stat.read().rsplit(')', 1)[1].split()[1] == me:
                        found.append(int(entry))
            except OSError:
                pass
    return found


def _cmdline(pid):
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as cmdline:
            return cmdline.read().decode(errors='replace')
    except OSError:
        return ''
