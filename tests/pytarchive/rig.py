"""A virtual library (sim/tapelib), a pytarchive config for it, the service on it, and the client.

Shared by the pytarchive end-to-end tests: `make_rig(**options)` gives a Rig that is cleaned up
(processes killed, tapes unmounted, loop devices freed) however the test ends.
"""

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Optional, Tuple

import blake3
import pytest

from pytarchive.library.processes import ltfs_processes, wait_for_exit
from pytarchive.library.status import parse_status

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


class Rig:
    """A virtual library, a config file for it, and the service running on them."""

    def __init__(
        self,
        tmp_path: Path,
        read_only_group: str = '',
        index_write_seconds: int = 0,
        capacity: int = 6 << 30,  # every small file takes a 512 KiB record on LTFS's file backend
        general: str = '',
        extra: str = '',
        drives: int = 1,
        tapes: str = 'TPN001L9,TPN002L9,CLN001L1',
    ):
        """general: lines added to [General]; extra: more sections ([Export], [Email]) for the config;
        drives: how many drives the library has (all of them in the config)."""
        self.library = tmp_path / 'library'
        init = subprocess.run(
            [
                PYTHON,
                '-m',
                'sim.tapelib',
                'init',
                str(self.library),
                '--slots',
                '8',
                '--drives',
                str(drives),
                '--tapes',
                tapes,
                '--capacity',
                str(capacity),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        # The socket's directory must be reachable by other users (pytest's tmp_path is not).
        self.run_dir = Path(tempfile.mkdtemp(prefix='pytarchive-test-', dir='/tmp'))
        self.run_dir.chmod(0o711)
        self.socket = self.run_dir / 'run' / 'pytarchive.sock'
        self.database = tmp_path / 'state' / 'pytarchive.db'
        self.mountpoint = str(self.library / 'mnt')  # the first drive's
        # Each drive's, as sim.tapelib init names them: mnt, mnt1, mnt2...
        self.mountpoints = [self.mountpoint] + [str(self.library / f'mnt{index}') for index in range(1, drives)]
        self.config = tmp_path / 'pytarchive.conf'
        self.scratch = tmp_path / 'scratch'
        self.scratch.mkdir()
        library_config = init.stdout.replace('[General]\n', f'[General]\nscratch_path = {self.scratch}\n{general}\n')
        self.config.write_text(
            library_config + f'\n[Service]\nsocket = {self.socket}\ndatabase = {self.database}\n'
            f'read_only_group = {read_only_group}   # a comment, stripped\n{extra}\n'
        )
        self.config.chmod(0o600)
        self.mtx = shlex.split(init.stdout.split('\nmtx = ')[1].split('\n')[0])
        self.log = tmp_path / 'service.log'
        self.process = None

    # -- the service -------------------------------------------------------------------------------

    def start(self, *options: str, env: Optional[dict] = None):
        """options: the service's own, e.g. --new-database; env: the service's environment, if not ours."""
        with open(self.log, 'a') as log:
            self.process = subprocess.Popen(
                [PYTHON, '-m', 'pytarchive.service', '--config-file', str(self.config), *options],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f'service exited with {self.process.returncode}:\n{self.log.read_text()}')
            with socket.socket(socket.AF_UNIX) as probe:
                # Answered by this process, not by a listener a killed one left behind for a moment.
                if probe.connect_ex(str(self.socket)) == 0 and listener_pid(probe) == self.process.pid:
                    return
            time.sleep(0.05)
        pytest.fail(f'service did not listen within 15 s:\n{self.log.read_text()}')

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM, as systemd stops it; its exit status. Generous: stopped mid-archive, it unmounts
        the tape (the index is written) and unloads it, which is slow on a loaded machine."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f'service did not stop within {timeout:g} s of SIGTERM:\n{self.log.read_text()[-4000:]}')
        self.process = None
        return code

    def crash(self):
        """kill -9 of the service and whatever it runs in its session (mtx, mkltfs), as a host crash
        or the OOM killer would; the ltfs daemon lives in its own session and survives."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def held_command(self, key: str) -> Tuple[Path, Path]:
        """Before start(): put a wrapper in front of the [Device] command `key` (ltfs, umount...).
        While the first path returned exists, a call of it does not run the command: it creates the
        second path and waits to be killed. A test kills the service at exactly that call, however
        fast the step around it or loaded the machine; with the first path gone, calls run as before."""
        text = self.config.read_text()
        found = re.search(rf'^{key} = (.*)$', text, re.MULTILINE)
        real = found.group(1) if found else shutil.which(key)
        folder = Path(tempfile.mkdtemp(prefix=f'held-{key}-', dir=self.run_dir))
        hold, started, wrapper = folder / 'hold', folder / 'started', folder / key
        wrapper.write_text(
            f"#!/bin/sh\n[ -e '{hold}' ] && {{ : > '{started}'; exec sleep 600; }}\nexec {real} \"$@\"\n"
        )
        wrapper.chmod(0o755)
        line = f'{key} = {wrapper}'
        self.config.write_text(
            text.replace(found.group(0), line) if found else text.replace('[Device]\n', f'[Device]\n{line}\n')
        )
        return hold, started

    def freeze(self):
        """SIGSTOP the service and what it runs (mtx, umount), to kill it (crash()) or change files under
        it at a moment of the test's choosing; the ltfs daemons live in their own session and go on."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        # The signal stops a thread only when it leaves the kernel: one inside a write (a database
        # commit, say) finishes it first. Frozen: every thread of the service stopped, or waiting in
        # vfork for a child that is itself stopped before its exec.
        deadline = time.monotonic() + 30
        while True:
            states = thread_states(self.process.pid)
            if all(state in ('T', 't', 'D kernel_clone') for state in states.values()):
                return
            assert time.monotonic() < deadline, f'the service did not stop within 30 s of SIGSTOP: {states}'
            time.sleep(0.001)

    def thaw(self):
        os.killpg(self.process.pid, signal.SIGCONT)

    def reading(self, path) -> int:
        """How far the service has read the file at path (its open descriptor's offset); -1 if not open."""
        fds = f'/proc/{self.process.pid}/fd'
        for fd in os.listdir(fds):
            try:
                if os.readlink(f'{fds}/{fd}') == str(path):
                    with open(f'/proc/{self.process.pid}/fdinfo/{fd}') as info:
                        return int(info.readline().split()[1])  # "pos:\t<offset>"
            except (FileNotFoundError, ValueError):
                continue  # closed meanwhile
        return -1

    def ltfs_running(self) -> bool:
        """Whether an ltfs daemon serves the mount point (it lives on after umount while writing the index)."""
        return bool(ltfs_processes(self.mountpoint))

    def query(self, sql: str, params=()) -> list:
        """Rows of the service's database, read as another process would (WAL: never blocks the service)."""
        db = sqlite3.connect(f'file:{self.database}?mode=ro', uri=True, timeout=10)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def close(self):
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        subprocess.run(
            [PYTHON, '-m', 'sim.tapelib', 'cleanup', str(self.library)], cwd=REPO, capture_output=True, timeout=60
        )
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- the client --------------------------------------------------------------------------------

    def client(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [PYTHON, '-m', 'pytarchive', '--config-file', str(self.config), *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str) -> str:
        done = self.client(*args)
        assert done.returncode == 0 and done.stderr == '', (done.returncode, done.stderr, self.fate())
        return done.stdout

    def fate(self) -> str:
        """For a failed test: whether the service still runs, and the end of its log."""
        if self.process is None:
            state = 'not started'
        elif self.process.poll() is None:
            state = f'running as pid {self.process.pid}'
        else:
            state = f'exited with {self.process.returncode}'
        return f'the service: {state}; its log ends:\n{self.log.read_text()[-3000:] if self.log.exists() else ""}'

    def tasks(self) -> dict:
        return {task['id']: task for task in json.loads(self.ok('queue', '--json'))}

    def wait_for(self, states: dict, timeout: float = 30) -> dict:
        """Wait until each task id is in one of its wanted states; return the tasks."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = self.tasks()
            if all(task_id in tasks and tasks[task_id]['state'] in wanted for task_id, wanted in states.items()):
                return tasks
            if time.monotonic() > deadline:
                pytest.fail(f'tasks not in {states}: {tasks}\n{self.log.read_text()}')
            time.sleep(0.1)

    def wait_until(self, condition, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, self.fate()
            time.sleep(0.05)

    def restart_and_requeue(self, task_id: int, timeout: float = 120, done_at_kill: bool = False) -> dict:
        """After a kill or a stop: start the service again, see the task interrupted, requeue it and
        wait for it to end; the task as it ended. done_at_kill: the kill came in a step of a few
        milliseconds at the task's end, where a SIGSTOP can meet its final commit inside the write:
        readers do not see that commit yet, the restarted service does, and the task is done."""
        self.start()
        task = self.tasks()[task_id]
        if done_at_kill and task['state'] == 'done':
            return task
        assert task['state'] == 'interrupted', (task, self.fate())
        self.ok('requeue', str(task_id))
        return self.wait_for({task_id: {'done', 'failed'}}, timeout=timeout)[task_id]

    def start_check_with_a_scan_behind_it(self, frozen: bool = False):
        """The service with task 2 (check of a formatted tape) running and task 3 (scan) queued;
        frozen (rig.freeze) if asked, so that the caller acts while the check surely still runs."""
        self.start()
        self.ok('format', 'TPN001L9')
        self.wait_for({1: {'done'}})
        self.ok('check', 'TPN001L9')
        self.ok('scan')
        self.freeze_when(2, lambda state, step: state == 'running')
        if not frozen:
            self.thaw()

    def freeze_when(self, task_id: int, wanted, timeout: float = 120, every: float = 0.05) -> None:
        """Return with the service frozen (rig.freeze) at the first moment task_id's row has
        wanted(state, step). The service runs in slices of `every` seconds until then and the row is
        read from the database, not through the client, so a task cannot end between the look and the
        freeze however loaded the machine is. A wanted step shorter than a slice may slip by: give a
        smaller `every` for those. The caller thaws it or crashes it."""
        deadline = time.monotonic() + timeout
        while True:
            self.freeze()
            rows = self.query('SELECT state, step FROM tasks WHERE id = ?', (task_id,))
            if rows and wanted(*rows[0]):
                return
            self.thaw()
            assert time.monotonic() < deadline and rows and rows[0][0] in ('queued', 'running'), (task_id, rows)
            time.sleep(every)

    @contextlib.contextmanager
    def drive_held(self, timeout: float = 60, drive: Optional[int] = 0, every: bool = False):
        """Hold a drive: the ltfs daemon of the next mount there is stopped as soon as it runs, so the
        task that mounted waits, with the tape in the drive, until the block ends (a stopped FUSE
        daemon answers nothing). Caught from the mount on, not at the unmount's index write: on a
        loaded machine a short task can get from that line to ltfs's exit before a test acts.
        drive: which (the first unless told); None: whichever mounts first; every: all of the
        library's drives, each caught as soon as it mounts (two tasks held at once)."""
        deadline = time.monotonic() + timeout
        watched = self.mountpoints if drive is None or every else [self.mountpoints[drive]]
        held = {}  # mount point -> the pids stopped there
        try:
            while len(held) < (len(watched) if every else 1):
                for mountpoint in watched:
                    if mountpoint in held:
                        continue
                    pids = ltfs_processes(mountpoint)
                    try:
                        for pid in pids:
                            os.kill(pid, signal.SIGSTOP)
                    except ProcessLookupError:
                        pids = []  # gone between the look and the stop: look again
                    if pids:
                        held[mountpoint] = pids
                assert time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.005)
            yield
        finally:
            for pids in held.values():
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)

    # -- the library as mtx and the kernel see it --------------------------------------------------

    def drive(self, index: int = 0):
        return parse_status(self._mtx('status')).drive(index)

    def volume(self, barcode: str = 'TPN001L9') -> dict:
        """{path: size} of every file and link on the tape (see mounted_volume)."""
        found = {}
        with self.mounted_volume(barcode) as mountpoint:
            for parent, directories, files in os.walk(mountpoint):
                for name in files + [d for d in directories if os.path.islink(os.path.join(parent, d))]:
                    path = os.path.join(parent, name)
                    found[os.path.relpath(path, mountpoint)] = os.lstat(path).st_size
        return found

    def read_from_tape(self, barcode: str, *paths: str) -> dict:
        """{path: bytes} of these files on the tape (see mounted_volume)."""
        with self.mounted_volume(barcode) as mountpoint:
            return {path: (mountpoint / path).read_bytes() for path in paths}

    @contextlib.contextmanager
    def mounted_volume(self, barcode: str):
        """The tape loaded with the real mtx and mounted read-only with the real ltfs on a mount point of
        the test's (the service idle) for the block; the mount point's Path."""
        device = dict(line.split(' = ', 1) for line in self.config.read_text().splitlines() if ' = ' in line)
        device['drive_device'] = device['drive_device'].split(', ')[0]  # the first drive's
        status = parse_status(self._mtx('status'))
        [slot] = [slot.number for slot in status.slots if slot.barcode == barcode]
        self._mtx('load', str(slot), '0')
        mountpoint = Path(tempfile.mkdtemp(prefix='volume-', dir=self.run_dir))
        try:
            subprocess.run(
                [device['ltfs'], '-o', f'devname={device["drive_device"]},ro', str(mountpoint)],
                capture_output=True,
                timeout=120,
            )
            yield mountpoint
        finally:
            pids = ltfs_processes(str(mountpoint))
            subprocess.run(['umount', str(mountpoint)], capture_output=True)
            wait_for_exit(pids, str(mountpoint), 60)
            self._mtx('unload', str(slot), '0')

    def _mtx(self, *args: str) -> str:
        return subprocess.run(
            [*self.mtx, '-f', str(self.library / 'dev' / 'sch0'), *args], capture_output=True, text=True, check=True
        ).stdout

    def mounted(self) -> bool:
        with open('/proc/self/mounts') as mounts:
            return any(line.split()[1] == self.mountpoint for line in mounts)


def thread_states(pid: int) -> dict:
    """{thread id: state letter} of a process's threads, from /proc (R running, S sleeping, D in the
    kernel uninterruptibly, T stopped), a D followed by where in the kernel it waits."""
    states = {}
    for thread in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{thread}/stat') as stat_file:
                state = stat_file.read().rsplit(')', 1)[1].split()[0]
            if state == 'D':
                with open(f'/proc/{pid}/task/{thread}/wchan') as wchan:
                    state = f'D {wchan.read()}'
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread has ended
        states[thread] = state
    return states


def listener_pid(connection: socket.socket) -> int:
    """The pid of the process that listens at the other end (SO_PEERCRED, as of its listen())."""
    return struct.unpack('3i', connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i')))[0]


@pytest.fixture
def make_rig(tmp_path):
    rigs = []

    def make(**options) -> Rig:
        rig = Rig(tmp_path, **options)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


# -- the workflow as the archive tests drive it ----------------------------------------------------

TAPE = 'TPN001L9'


def make_tree(root: Path) -> Path:
    """A folder with what trips archivers up: spaces, unicode, links (one dangling), an empty folder."""
    (root / 'sub dir' / 'deeper').mkdir(parents=True)
    (root / 'empty folder').mkdir()
    (root / 'données été.txt').write_text('unicode name\n')
    (root / 'sub dir' / 'a file.bin').write_bytes(os.urandom(300_000))
    (root / 'sub dir' / 'deeper' / 'small.txt').write_text('small\n')
    (root / 'zero').write_bytes(b'')
    (root / 'link to small').symlink_to('sub dir/deeper/small.txt')
    (root / 'dangling').symlink_to('/nowhere/at/all')
    (root / 'sub dir' / 'a file.bin').chmod(0o640)
    os.utime(root / 'zero', (1_600_000_000, 1_600_000_000))
    return root


def tree(root: Path) -> Path:
    """A small folder for the walk and prepare: a link to a folder, a dangling link, an empty folder."""
    (root / 'b dir' / 'inner').mkdir(parents=True)
    (root / 'empty').mkdir()
    (root / 'a.txt').write_text('a')
    (root / 'b dir' / 'inner' / 'é.bin').write_bytes(b'x' * 1000)
    (root / 'to dir').symlink_to('b dir')
    (root / 'dangling').symlink_to('/no/such/place')
    return root


def archive_members(path: str) -> list:
    """The member names of a .tar.zst, in archive order (directories without their trailing /)."""
    with subprocess.Popen(['zstd', '-d', '-q', '-c', path], stdout=subprocess.PIPE) as zstd:
        with tarfile.open(fileobj=zstd.stdout, mode='r|') as archive:
            return [member.name for member in archive]


def snapshot(root: Path) -> dict:
    """Everything a restore must reproduce: kind, content, link target, mode and mtime of each entry."""
    found = {}
    for entry in sorted(root.rglob('*')):
        relative = str(entry.relative_to(root))
        info = entry.lstat()
        if entry.is_symlink():
            found[relative] = ('link', os.readlink(entry))
        elif entry.is_dir():
            found[relative] = ('dir', oct(info.st_mode & 0o7777))
        else:
            found[relative] = (
                'file',
                blake3.blake3(entry.read_bytes()).hexdigest(),
                oct(info.st_mode & 0o7777),
                int(info.st_mtime),
            )
    return found


def sim_fault(rig, *arguments: str) -> None:
    """A fault the virtual library makes happen (python -m sim.tapelib fault ...): a flipped byte..."""
    subprocess.run(
        [PYTHON, '-m', 'sim.tapelib', 'fault', str(rig.library), *arguments], cwd=REPO, check=True, capture_output=True
    )


def queued_id(out: str) -> int:
    """The task id in the client's `queued task N: ...` line."""
    return int(out.split()[2].rstrip(':'))


def formatted_rig(make_rig, **options):
    rig = make_rig(**options)
    rig.start()
    rig.ok('format', TAPE, '--wait')
    return rig


def archived(rig, folder: Path, description: str = 'test data') -> str:
    rig.ok('prepare', str(folder), description, '--wait')
    return rig.ok('archive', str(folder), TAPE, '--wait')
