"""The service and the client end to end, as real processes, on the virtual library (sim/tapelib).

Every test starts `python -m pytarchive.service --config-file FILE` in its own session and talks to it
with `python -m pytarchive` (or, for another UID, the client's main() in a forked child that
dropped its privileges: /root, where the interpreter lives, is closed to other users).
"""

import json
import os
import re
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
import traceback

import pytest

from common.errors import run_main
from pytarchive.client import cli, protocol
from pytarchive.library.processes import ltfs_processes
from pytarchive.service import server
from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskStorage
from tests.pytarchive.rig import PYTHON, REPO, formatted_rig

pytestmark = pytest.mark.root  # the virtual library mounts its tapes; other users connect

NOBODY = 65534
TAPE_GROUP = 26  # the 'tape' group of Debian's base-passwd


def run_client_as(uid: int, groups: list, argv: list) -> tuple:
    """The client's main(argv) in a child process running as `uid` with these groups: (status, stdout, stderr)."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 99
        try:
            os.close(out_read)
            os.close(err_read)
            os.dup2(out_write, 1)
            os.dup2(err_write, 2)
            sys.stdout = open(1, 'w', closefd=False)
            sys.stderr = open(2, 'w', closefd=False)
            os.setgroups(groups)
            os.setgid(NOBODY)
            os.setuid(uid)
            status = run_main(lambda: cli.main(argv), cli.PROG)
        except BaseException:  # noqa: BLE001 - report, then leave with 99
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    os.close(out_write)
    os.close(err_write)
    with open(out_read) as out, open(err_read) as err:
        stdout, stderr = out.read(), err.read()
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status), stdout, stderr


# -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_scan_format_check_through_the_queue_and_the_drive_is_left_empty(make_rig):
    rig = make_rig()
    rig.start()
    assert rig.ok('scan') == 'queued task 1: scan\n'
    assert rig.ok('format', 'tpn001l9') == 'queued task 2: format TPN001L9\n'
    assert rig.ok('check', 'TPN001L9') == 'queued task 3: check TPN001L9\n'
    rig.ok('format', 'TPN001L9')  # again: must not erase what the first one wrote
    rig.ok('check', 'TPN999L9')
    tasks = rig.wait_for({1: {'done'}, 2: {'done'}, 3: {'done'}, 4: {'done'}, 5: {'failed'}})
    assert tasks[1]['result'] == '3 tapes with a barcode in 8 slots'
    assert tasks[2]['result'] == 'TPN001L9 formatted'
    assert tasks[3]['result'].startswith('TPN001L9: ') and ' used of ' in tasks[3]['result']
    assert tasks[4]['result'] == 'TPN001L9 already holds an LTFS volume; left as it is (nothing erased)'
    assert tasks[5]['error'].startswith('no tape with barcode TPN999L9 in the library')

    queue = rig.ok('queue').splitlines()
    assert queue[0].split() == ['ID', 'KIND', 'ARGUMENTS', 'STATE', 'DRIVE', 'PROGRESS', 'AGE', 'RESULT']
    assert queue[1].split()[:6] == ['1', 'scan', '-', 'done', '0', '-']  # the drive that ran it
    assert queue[2].split()[:6] == ['2', 'format', 'TPN001L9', 'done', '0', '-']
    assert queue[2].endswith('TPN001L9 formatted')  # each task one line, its result summed up in it
    assert 'error: no tape with barcode TPN999L9' in queue[5] and len(queue) == 6
    whole = rig.ok('queue', '5')
    assert whole.startswith('task 5: check TPN999L9\nstate:     failed') and tasks[5]['error'] in whole

    summary = json.loads(rig.ok('summary', '--json'))
    by_barcode = {tape['barcode']: tape for tape in summary['tapes']}
    assert (by_barcode['TPN001L9']['slot'], by_barcode['TPN001L9']['state']) == (1, 'formatted')
    assert 0.92 < by_barcode['TPN001L9']['capacity'] / (6 << 30) < 0.93  # LTFS's data partition
    assert (by_barcode['TPN002L9']['slot'], by_barcode['TPN002L9']['state']) == (2, 'unknown')
    assert by_barcode['CLN001L1']['state'] == 'cleaning'
    assert summary['queue'] == {'done': 4, 'failed': 1}
    assert rig.ok('summary').splitlines()[1].split()[:3] == ['TPN001L9', '1', 'formatted']

    refused = rig.client('format', 'CLN001L1')
    assert (refused.returncode, refused.stderr) == (
        1,
        'pytarchive: error: CLN001L1 is a cleaning tape: pytarchive never uses cleaning tapes for data\n',
    )
    assert not rig.drive().full and not rig.mounted()
    assert rig.stop() == 0
    assert not rig.socket.exists()


def test_only_root_may_connect_and_the_uid_comes_from_the_socket(make_rig):
    rig = make_rig()
    rig.start()
    assert stat.S_IMODE(rig.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(rig.socket.parent.stat().st_mode) == 0o700
    argv = ['--socket', str(rig.socket), 'queue']
    status, out, err = run_client_as(NOBODY, [], argv)
    assert (status, out) == (7, '')
    assert err.startswith(f'pytarchive: error: permission denied on {rig.socket}: pytarchive commands need root')

    # Even with the file modes opened up, the service itself refuses by the caller's UID.
    rig.socket.parent.chmod(0o711)
    rig.socket.chmod(0o666)
    status, out, err = run_client_as(NOBODY, [TAPE_GROUP], argv)
    assert (status, out, err) == (
        7,
        '',
        'pytarchive: error: permission denied for UID 65534: only root may use pytarchive\n',
    )
    assert "refused 'queue' from UID 65534" in rig.log.read_text()
    assert rig.ok('queue') == 'the queue is empty\n'


@pytest.mark.slow
def test_the_read_only_group_may_list_but_not_change(make_rig):
    rig = make_rig(read_only_group='tape')
    rig.start()
    assert stat.S_IMODE(rig.socket.stat().st_mode) == 0o660 and rig.socket.stat().st_gid == TAPE_GROUP
    assert stat.S_IMODE(rig.socket.parent.stat().st_mode) == 0o710
    rig.ok('scan')
    rig.wait_for({1: {'done'}})
    socket_option = ['--socket', str(rig.socket)]

    status, out, err = run_client_as(NOBODY, [TAPE_GROUP], socket_option + ['queue'])
    assert (status, err) == (0, '') and out.splitlines()[1].split()[:4] == ['1', 'scan', '-', 'done']
    status, out, err = run_client_as(NOBODY, [TAPE_GROUP], socket_option + ['summary', '--json'])
    assert status == 0 and len(json.loads(out)['tapes']) == 3
    for command in (['format', 'TPN001L9'], ['requeue', '--all'], ['scan']):
        status, out, err = run_client_as(NOBODY, [TAPE_GROUP], socket_option + command)
        assert (status, out, err) == (
            7,
            '',
            f'pytarchive: error: permission denied for UID 65534: only root may run '
            f"'{command[0]}'; members of group tape may run deleteable, find, history, ls, queue, summary, task\n",
        )
    status, out, err = run_client_as(NOBODY, [], socket_option + ['queue'])
    assert status == 7 and err.startswith(f'pytarchive: error: permission denied on {rig.socket}')
    assert list(rig.tasks()) == [1]


@pytest.mark.slow
def test_kill_9_mid_task_the_queue_survives_and_the_task_waits_for_requeue(make_rig):
    rig = make_rig()
    # Killed while the check mounts the tape (mounted for a few ms only): the restart must put it back.
    hold, started = rig.held_command('ltfs')
    hold.touch()
    rig.start_check_with_a_scan_behind_it()
    rig.wait_until(started.exists)
    rig.crash()
    hold.unlink()

    rig.start()
    tasks = rig.wait_for({3: {'done'}})  # queued before the crash: resumed
    assert [(task['id'], task['kind'], task['state']) for task in tasks.values()] == [
        (1, 'format', 'done'),
        (2, 'check', 'interrupted'),
        (3, 'scan', 'done'),
    ]
    assert tasks[2]['error'] == 'the service stopped while this task ran'
    assert 'task 2 ran when the service last stopped: marked interrupted' in rig.log.read_text()
    assert not rig.drive().full and not rig.mounted()  # put back at start

    assert rig.ok('requeue', '2') == 'requeued task 2\n'
    tasks = rig.wait_for({2: {'done'}})
    assert tasks[2]['result'].startswith('TPN001L9: ') and tasks[2]['attempts'] == 2
    assert not rig.drive().full and not rig.mounted()


@pytest.mark.slow
def test_failures_quote_mtx_and_ltfs_and_requeue_by_id_and_all(make_rig):
    rig = make_rig()
    rig.start()
    rig.ok('format', 'TPN001L9')
    rig.wait_for({1: {'done'}})

    def fault(*args):
        subprocess.run(
            [PYTHON, '-m', 'sim.tapelib', 'fault', str(rig.library), *args], cwd=REPO, check=True, capture_output=True
        )

    fault('damage', 'TPN001L9')
    rig.ok('check', 'TPN001L9')
    rig.ok('check', 'TPN001L9')
    tasks = rig.wait_for({2: {'failed'}, 3: {'failed'}})
    assert tasks[2]['error'].startswith(f'{REPO}/build/ltfs/bin/ltfs -o devname=')
    assert tasks[2]['error'].endswith(
        'LTFS11009E Cannot read volume: failed to read partition labels.; LTFS14013E Cannot mount the volume.'
    )
    assert not rig.drive().full and not rig.mounted()  # released after the failure
    fault('mtx-error', '--sense-key', 'Illegal Request', '--asc', '53', '--ascq', '03')
    rig.ok('format', 'TPN002L9')
    error = rig.wait_for({4: {'failed'}})[4]['error']
    assert '(Sense Key=Illegal Request, ASC=53, ASCQ=03)' in error
    assert 'https://www.t10.org/lists/asc-num.htm#ASCD_53' in error and 'do not power-cycle the library' in error

    fault('clear')
    assert rig.ok('requeue', '2') == 'requeued task 2\n'
    rig.wait_for({2: {'done'}})
    refused = rig.client('requeue', '1,2,9')
    assert (refused.returncode, refused.stderr) == (
        1,
        'pytarchive: error: nothing requeued: task 1 is done; task 2 is done; task 9 does not exist '
        '(only failed or interrupted tasks can be requeued)\n',
    )
    assert rig.ok('requeue', '--all') == 'requeued tasks 3, 4\n'
    tasks = rig.wait_for({3: {'done'}, 4: {'done'}})
    assert tasks[4]['result'] == 'TPN002L9 formatted'
    assert rig.ok('requeue', '--all') == 'no failed or interrupted tasks to requeue\n'


@pytest.mark.slow
def test_sigterm_mid_task_empties_the_drive_then_exits_0_and_the_rest_waits(make_rig):
    rig = make_rig()
    rig.start_check_with_a_scan_behind_it()
    assert rig.stop() == 0
    assert not rig.drive().full and not rig.mounted() and not ltfs_processes(rig.mountpoint)

    rig.start()
    tasks = rig.wait_for({3: {'done'}})
    assert tasks[2]['state'] in ('done', 'interrupted')  # its step in progress may finish first
    if tasks[2]['state'] == 'interrupted':
        assert tasks[2]['error'] == 'the service was stopped before this task finished'


def service(config):
    """A second service run to its end: what it printed and its exit status."""
    return subprocess.run(
        [PYTHON, '-m', 'pytarchive.service', '--config', str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_service_refuses_a_bad_config_and_a_second_instance_in_one_line(make_rig, tmp_path):
    bad = tmp_path / 'bad.conf'
    bad.write_text('[Device]\nlibrary = /dev/sch0 # no drive_serial\n')
    done = service(bad)
    assert (done.returncode, done.stdout, done.stderr) == (
        3,
        '',
        f'pytarchive.service: error: {bad}: [Device] drive_serial: is missing (required)\n',
    )

    rig = make_rig()
    rig.start()
    done = service(rig.config)
    assert (done.returncode, done.stderr) == (
        1,
        f'pytarchive.service: error: another pytarchive service is already using {rig.database}\n',
    )
    assert rig.ok('queue') == 'the queue is empty\n'  # the first one is untouched


def test_a_second_service_with_its_own_database_on_the_same_library_is_refused(make_rig, tmp_path):
    rig = make_rig()
    rig.start()
    rig.ok('format', 'TPN001L9')
    other = tmp_path / 'other.conf'
    other.write_text(
        rig.config.read_text()
        .replace(str(rig.database), str(tmp_path / 'other-state' / 'other.db'))
        .replace(str(rig.socket), str(tmp_path / 'other.sock'))
    )
    other.chmod(0o600)
    done = service(other)
    assert (done.returncode, done.stderr) == (
        1,
        f'pytarchive.service: error: another pytarchive service is already using the library '
        f'{rig.library / "dev" / "sch0"}: one service per library; stop the other one first\n',
    )
    assert rig.wait_for({1: {'done'}})[1]['state'] == 'done'  # the first one's task was not disturbed


# -- limits: what a member of the read-only group (or anyone who can connect) can make root spend ----


def rss_mib(pid: int) -> float:
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise AssertionError(f'no VmRSS for {pid}')


class Hostile:
    """A child process running as nobody (in the read-only group) that opens `count` connections, sends
    each a frame header announcing `announce` bytes and then `body` bytes of it, and holds them open.
    release() lets it read what the service answered on each: a count of the first words of the errors."""

    def __init__(self, socket_path, count: int, announce: int, body: int):
        ready_read, ready_write = os.pipe()
        self.go_read, self.go_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never return into pytest
            try:
                os.close(ready_read)
                os.setgroups([TAPE_GROUP])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                connections = []
                for _ in range(count):
                    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    connection.connect(str(socket_path))
                    connection.setblocking(False)
                    try:  # as much as the socket takes without waiting
                        connection.send(struct.pack('>I', announce) + b' ' * body)
                    except OSError:
                        pass
                    connections.append(connection)
                os.write(ready_write, b'sent\n')
                select.select([self.go_read], [], [], 120)  # however the test ends, not for ever
                answers = {}
                for connection in connections:
                    connection.settimeout(30)
                    try:
                        reply = protocol.recv_message(connection)
                        key = reply['error'].split(':')[0]
                    except (OSError, protocol.ProtocolError) as exc:
                        key = type(exc).__name__
                    answers[key] = answers.get(key, 0) + 1
                os.write(ready_write, json.dumps(answers).encode() + b'\n')
            finally:
                os._exit(0)
        os.close(ready_write)
        self.ready = os.fdopen(ready_read)
        assert self.ready.readline() == 'sent\n'

    def release(self) -> dict:
        os.write(self.go_write, b'x')
        answers = json.loads(self.ready.readline())
        os.waitpid(self.pid, 0)
        self.pid = None
        return answers

    def kill(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


@pytest.fixture
def hostile():
    """hostile(socket_path, count, announce, body) -> Hostile, killed after the test."""
    children = []

    def start(*args) -> Hostile:
        children.append(Hostile(*args))
        return children[-1]

    yield start
    for child in children:
        child.kill()


def test_40_connections_announcing_huge_frames_keep_memory_bounded_and_root_is_served(make_rig, hostile):
    rig = make_rig(read_only_group='tape')
    rig.start()
    assert rig.ok('queue') == 'the queue is empty\n'
    before = rss_mib(rig.process.pid)
    # Each announces the largest frame there is and sends 1 MiB of it (or what the socket takes).
    attack = hostile(rig.socket, 40, protocol.MAX_FRAME, 1024 * 1024)
    time.sleep(2)  # the service has read what it was sent
    during = rss_mib(rig.process.pid)
    started = time.monotonic()
    assert rig.ok('queue') == 'the queue is empty\n'  # root is served meanwhile
    assert time.monotonic() - started < 15
    answers = attack.release()
    assert during - before < 64, (before, during)
    assert sum(answers.values()) == 40
    assert answers.get('bad request', 0) + answers.get('too many connections from UID 65534', 0) == 40, answers
    assert (
        f'frame of {protocol.MAX_FRAME} bytes announced, more than the {protocol.MAX_REQUEST}-byte limit'
        in rig.log.read_text()
    )


@pytest.mark.slow
def test_connections_per_user_are_capped_and_a_slow_request_cannot_hold_one(make_rig, hostile):
    rig = make_rig(read_only_group='tape')
    rig.start()
    before = rss_mib(rig.process.pid)
    # Requests within the size limit, never finished: the service holds a few, refuses the rest, and
    # gives each held one REQUEST_TIMEOUT_S to arrive whole.
    started = time.monotonic()
    attack = hostile(rig.socket, 40, protocol.MAX_REQUEST, protocol.MAX_REQUEST // 2)
    time.sleep(1)
    during = rss_mib(rig.process.pid)
    status, out, err = run_client_as(NOBODY, [TAPE_GROUP], ['--socket', str(rig.socket), 'queue'])
    assert (status, out) == (1, '')
    assert err == (
        f'pytarchive: error: too many connections from UID {NOBODY}: at most '
        f'{server.MAX_CONNECTIONS_PER_USER} at a time; try again when one ends\n'
    )
    assert rig.ok('queue') == 'the queue is empty\n'  # root is never turned away
    answers = attack.release()
    assert time.monotonic() - started < server.REQUEST_TIMEOUT_S + 20
    assert answers == {
        'too many connections from UID 65534': 40 - server.MAX_CONNECTIONS_PER_USER,
        'bad request': server.MAX_CONNECTIONS_PER_USER,
    }, answers
    assert during - before < 64, (before, during)
    assert re.search(
        rf'WARNING - bad request from UID {NOBODY} \(pid \d+\): no complete message within '
        rf'{server.REQUEST_TIMEOUT_S:g} s \(\d+ of {protocol.MAX_REQUEST} bytes\)\n',
        rig.log.read_text(),
    )
    assert 'Traceback' not in rig.log.read_text()


@pytest.mark.slow
def test_an_idle_or_trickling_client_is_cut_off_at_the_request_deadline(make_rig):
    rig = make_rig()
    rig.start()
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    trickling = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    started = time.monotonic()
    with idle, trickling:
        idle.connect(str(rig.socket))
        trickling.connect(str(rig.socket))
        trickling.sendall(struct.pack('>I', 100))
        trickling.settimeout(0.5)
        replies = {}
        while 'trickling' not in replies and time.monotonic() - started < 60:
            trickling.send(b' ')  # one byte now and then: every single read is quick
            try:
                replies['trickling'] = protocol.recv_message(trickling)
            except TimeoutError:
                pass
        idle.settimeout(60)
        replies['idle'] = protocol.recv_message(idle)
        elapsed = time.monotonic() - started
        assert idle.recv(1) == b''  # and then hung up
    assert replies['idle'] == protocol.failed(
        f'bad request: no complete message within {server.REQUEST_TIMEOUT_S:g} s (0 of 4 bytes)'
    )
    assert replies['trickling']['error'].startswith(
        f'bad request: no complete message within {server.REQUEST_TIMEOUT_S:g} s ('
    )
    assert server.REQUEST_TIMEOUT_S <= elapsed < server.REQUEST_TIMEOUT_S + 15
    assert rig.ok('queue') == 'the queue is empty\n'


# -- the database deleted, replaced or corrupted -------------------------------------------------------


def critical_lines(rig, count: int = 1, timeout: float = 15) -> list:
    """The CRITICAL lines of the service log, once there are `count`."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in rig.log.read_text().splitlines() if ' - CRITICAL - ' in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def start_with(rig, *options: str) -> None:
    """rig.start() with service options (rig.start takes none)."""
    with open(rig.log, 'a') as log:
        rig.process = subprocess.Popen(
            [PYTHON, '-m', 'pytarchive.service', '--config-file', str(rig.config), *options],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 15
    while not rig.socket.exists():
        assert rig.process.poll() is None and time.monotonic() < deadline, rig.log.read_text()
        time.sleep(0.05)


def refuses_work(rig, line: str) -> None:
    """Every command gets the same one line and exit 1; nothing is queued."""
    for command in (['queue'], ['summary'], ['scan']):
        done = rig.client(*command)
        assert (done.returncode, done.stdout, done.stderr) == (1, '', f'pytarchive: error: {line}\n'), command


@pytest.mark.slow
def test_a_database_deleted_while_running_stops_the_work_and_nothing_is_lost(make_rig):
    rig = make_rig()
    rig.start()
    rig.ok('scan', '--wait')
    for name in rig.database.parent.glob('pytarchive.db*'):
        if not name.name.endswith('.lock'):  # the lock too would be a different test: nothing else notices it
            name.unlink()

    [critical] = critical_lines(rig)  # noticed while idle, without a command
    [rescued] = rig.database.parent.glob('pytarchive.db.rescued-*')
    line = (
        f'the database {rig.database} was deleted while the service ran; the catalog as the service had it is '
        f'saved in {rescued}: stop the service, move that file to {rig.database} and start it again'
    )
    assert critical.endswith(f' - pytarchive.service.server - CRITICAL - {line}')
    refuses_work(rig, line)
    assert rig.stop() == 1
    assert not rig.database.exists()  # the refused scan created nothing

    # Started again as it is: the lock and the rescued copy show the directory was in use.
    rig.start()
    line = (
        f'the database {rig.database} is missing, but its directory still holds pytarchive.db.lock, '
        f'{rescued.name}, so it was in use: restore it from the backup of its state directory (see README: State), '
        'or start the service once with --new-database to begin with an empty catalog'
    )
    assert critical_lines(rig, 2)[-1].endswith(f' - CRITICAL - {line}')
    refuses_work(rig, line)
    assert rig.stop() == 1 and not rig.database.exists()

    rescued.rename(rig.database)  # what the line said to do
    rig.start()
    assert [(task['id'], task['kind'], task['state']) for task in rig.tasks().values()] == [(1, 'scan', 'done')]
    assert rig.stop() == 0
    assert 'Traceback' not in rig.log.read_text() and len(critical_lines(rig)) == 2


@pytest.mark.slow
def test_new_database_starts_an_empty_catalog_only_when_asked(make_rig):
    rig = make_rig()
    rig.start()
    rig.ok('scan', '--wait')
    assert rig.stop() == 0
    rig.database.unlink()
    rig.start()
    refused = rig.client('queue')
    assert refused.returncode == 1 and 'is missing, but its directory still holds pytarchive.db.lock,' in refused.stderr
    assert rig.stop() == 1
    start_with(rig, '--new-database')
    assert rig.ok('queue') == 'the queue is empty\n'
    rig.ok('scan', '--wait')
    assert rig.stop() == 0


@pytest.mark.slow
def test_a_database_overwritten_while_running_stops_the_work(make_rig):
    rig = make_rig()
    rig.start()
    rig.ok('scan', '--wait')
    with open(rig.database, 'r+b') as file:  # what a stray `dd` or a bad disk does
        file.write(b'\0' * 100)
    [critical] = critical_lines(rig)
    line = (
        f'the database {rig.database} is corrupt (its header was overwritten): restore it from the backup of its '
        'state directory (see README: State)'
    )
    assert critical.endswith(f' - CRITICAL - {line}')
    refuses_work(rig, line)
    assert rig.stop() == 1
    assert 'Traceback' not in rig.log.read_text()


@pytest.mark.slow
def test_a_corrupted_database_is_found_at_start_and_left_as_it_is(make_rig):
    rig = make_rig()
    rig.start()
    assert rig.stop() == 0
    database = Database(str(rig.database))  # 400 tasks queued while it was stopped: several pages
    for index in range(400):
        TaskStorage(database).enqueue('check', {'barcode': f'TPN{index:03d}L9'})
    database.close()
    with open(rig.database, 'r+b') as file:
        file.seek(4096 * 3)
        file.write(b'\xa5' * 4096)
    before = rig.database.read_bytes()

    rig.start()
    [critical] = critical_lines(rig)
    assert f' - CRITICAL - the database {rig.database} is corrupt (' in critical
    line = critical.split(' - CRITICAL - ')[1]
    assert line.endswith('): restore it from the backup of its state directory (see README: State)')
    refuses_work(rig, line)
    assert rig.stop() == 1
    assert rig.database.read_bytes() == before  # nothing written into it
    assert 'Traceback' not in rig.log.read_text()


@pytest.mark.slow
def test_a_database_deleted_mid_task_stops_the_task_empties_the_drive_and_the_rescued_catalog_resumes(make_rig):
    rig = make_rig()
    rig.start_check_with_a_scan_behind_it(frozen=True)  # task 2 (check) running, task 3 (scan) queued
    for name in rig.database.parent.glob('pytarchive.db*'):
        if not name.name.endswith('.lock'):
            name.unlink()
    rig.thaw()
    [critical] = critical_lines(rig)
    assert f'CRITICAL - the database {rig.database} was deleted while the service ran' in critical
    deadline = time.monotonic() + 30
    while rig.drive().full or rig.mounted():  # the task stopped and gave the tape back
        assert time.monotonic() < deadline, rig.log.read_text()
        time.sleep(0.2)
    assert rig.stop() == 1
    [rescued] = rig.database.parent.glob('pytarchive.db.rescued-*')
    rescued.rename(rig.database)
    rig.start()
    tasks = rig.wait_for({3: {'done'}})  # the queued scan was not taken before: it runs now
    assert tasks[2]['state'] == 'interrupted' and tasks[2]['error'] == 'the service stopped while this task ran'
    assert 'Traceback' not in rig.log.read_text()
    assert len(critical_lines(rig)) == 1


def test_a_failed_task_is_mailed_by_the_smtp_handler_of_a_logging_conf(make_rig, smtp_server, tmp_path):
    inbox, port = smtp_server()
    logging_conf = tmp_path / 'logging.conf'
    logging_conf.write_text(
        '[loggers]\nkeys=root\n\n[handlers]\nkeys=emailHandler\n\n[formatters]\nkeys=defaultFormatter\n\n'
        '[logger_root]\nlevel=INFO\nhandlers=emailHandler\n\n'
        '[handler_emailHandler]\nclass=logging.handlers.SMTPHandler\nlevel=CRITICAL\nformatter=defaultFormatter\n'
        f"args=(('127.0.0.1', {port}), 'pytarchive@lab.example', ['it@lab.example'], 'pyarchive: Task failed')\n\n"
        '[formatter_defaultFormatter]\nformat=%(asctime)s - %(name)s - %(levelname)s - %(message)s\n'
    )
    rig = formatted_rig(make_rig, extra=f'logging_config = {logging_conf}\n')
    failed = rig.client('check', 'TPN002L9', '--wait')  # in the library, never formatted: the task fails
    assert failed.returncode == 1, failed.stderr
    deadline = time.monotonic() + 10
    while not inbox.messages():
        assert time.monotonic() < deadline, 'no mail arrived'
        time.sleep(0.1)
    [message] = inbox.messages()
    assert message['Subject'] == 'pyarchive: Task failed'
    assert 'check' in message.get_content() and 'TPN002L9' in message.get_content()
