"""The service and the client end to end, as real processes, on the virtual library (sim/tapelib).

Every test starts `python -m pytarchive.service --config FILE` in its own session and talks to it
with `python -m pytarchive` (or, for another UID, the client's main() in a forked child that
dropped its privileges: /root, where the interpreter lives, is closed to other users).
"""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import traceback


from pytarchive import client
from pytarchive.library.processes import ltfs_processes
from pytarchive_rig import PYTHON, REPO

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
            status = client.main(argv)
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


def test_the_client_says_in_one_line_when_the_service_is_not_running(tmp_path):
    missing = tmp_path / 'run' / 'pytarchive.sock'
    config = tmp_path / 'p.conf'
    config.write_text(f'[Device]\nlibrary = /dev/sch0\ndrive_serial = 10WT0\n[Service]\nsocket = {missing}\n')
    run = lambda *args: subprocess.run([PYTHON, '-m', 'pytarchive', *args], cwd=REPO, capture_output=True,  # noqa: E731
                                       text=True, timeout=60)
    done = run('--config', str(config), 'queue')
    assert (done.returncode, done.stdout) == (4, '')
    assert done.stderr == f'pytarchive: the pytarchive service is not running (no socket at {missing})\n'

    # A socket file left behind by a service that died: nobody listens on it.
    missing.parent.mkdir()
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(missing))
    done = run('queue', '--config', str(config))
    assert (done.returncode, done.stderr) == (
        4, f'pytarchive: the pytarchive service is not running (nothing answers on {missing})\n')

    done = run('--config', str(tmp_path / 'nope.conf'), 'summary')
    assert (done.returncode, done.stderr) == (3, f'pytarchive: {tmp_path / "nope.conf"}: config file not found\n')


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
    assert queue[0].split() == ['ID', 'KIND', 'ARGUMENTS', 'STATE', 'PROGRESS', 'AGE']
    assert queue[1].split()[:5] == ['1', 'scan', '-', 'done', '-']
    assert queue[3].split()[:5] == ['2', 'format', 'TPN001L9', 'done', '-']
    assert '    error: no tape with barcode TPN999L9' in rig.ok('queue')

    summary = json.loads(rig.ok('summary', '--json'))
    by_barcode = {tape['barcode']: tape for tape in summary['tapes']}
    assert (by_barcode['TPN001L9']['slot'], by_barcode['TPN001L9']['state']) == (1, 'formatted')
    assert 190_000_000 < by_barcode['TPN001L9']['capacity'] <= 200_000_000
    assert (by_barcode['TPN002L9']['slot'], by_barcode['TPN002L9']['state']) == (2, 'unknown')
    assert by_barcode['CLN001L1']['state'] == 'cleaning'
    assert summary['queue'] == {'done': 4, 'failed': 1}
    assert rig.ok('summary').splitlines()[1].split()[:3] == ['TPN001L9', '1', 'formatted']

    refused = rig.client('format', 'CLN001L1')
    assert (refused.returncode, refused.stderr) == (
        1, 'pytarchive: CLN001L1 is a cleaning tape: pytarchive never uses cleaning tapes for data\n')
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
    assert err.startswith(f'pytarchive: permission denied on {rig.socket}: pytarchive commands need root')

    # Even with the file modes opened up, the service itself refuses by the caller's UID.
    rig.socket.parent.chmod(0o711)
    rig.socket.chmod(0o666)
    status, out, err = run_client_as(NOBODY, [TAPE_GROUP], argv)
    assert (status, out, err) == (7, '', 'pytarchive: permission denied for UID 65534: only root may use pytarchive\n')
    assert "refused 'queue' from UID 65534" in rig.log.read_text()
    assert rig.ok('queue') == 'the queue is empty\n'


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
        assert (status, out, err) == (7, '', f"pytarchive: permission denied for UID 65534: only root may run "
                                             f"'{command[0]}'; members of group tape may run deleteable, queue, summary, task\n")
    status, out, err = run_client_as(NOBODY, [], socket_option + ['queue'])
    assert status == 7 and err.startswith(f'pytarchive: permission denied on {rig.socket}')
    assert list(rig.tasks()) == [1]


def test_kill_9_mid_task_the_queue_survives_and_the_task_waits_for_requeue(make_rig):
    rig = make_rig(index_write_seconds=2)
    rig.start_check_with_a_scan_behind_it()
    time.sleep(0.4)
    rig.crash()

    rig.start()
    tasks = rig.wait_for({3: {'done'}})  # queued before the crash: resumed
    assert [(task['id'], task['kind'], task['state']) for task in tasks.values()] == [
        (1, 'format', 'done'), (2, 'check', 'interrupted'), (3, 'scan', 'done')]
    assert tasks[2]['error'] == 'the service stopped while this task ran'
    assert 'task 2 ran when the service last stopped: marked interrupted' in rig.log.read_text()
    assert not rig.drive().full and not rig.mounted()  # put back at start

    assert rig.ok('requeue', '2') == 'requeued task 2\n'
    tasks = rig.wait_for({2: {'done'}})
    assert tasks[2]['result'].startswith('TPN001L9: ') and tasks[2]['attempts'] == 2
    assert not rig.drive().full and not rig.mounted()


def test_failures_quote_mtx_and_ltfs_and_requeue_by_id_and_all(make_rig):
    rig = make_rig()
    rig.start()
    rig.ok('format', 'TPN001L9')
    rig.wait_for({1: {'done'}})
    fault = lambda *args: subprocess.run([PYTHON, '-m', 'sim.tapelib', 'fault', str(rig.library), *args],  # noqa: E731
                                         cwd=REPO, check=True, capture_output=True)
    fault('mount-fails', '--count', '2')
    rig.ok('check', 'TPN001L9')
    rig.ok('check', 'TPN001L9')
    tasks = rig.wait_for({2: {'failed'}, 3: {'failed'}})
    assert 'LTFS' in tasks[2]['error'] and tasks[2]['error'].startswith(f'{rig.library}/bin/ltfs -o devname=')
    assert not rig.drive().full and not rig.mounted()  # released after the failure
    fault('mtx-error', '--sense-key', 'Illegal Request', '--asc', '53', '--ascq', '03')
    rig.ok('format', 'TPN002L9')
    error = rig.wait_for({4: {'failed'}})[4]['error']
    assert '(Sense Key=Illegal Request, ASC=53, ASCQ=03)' in error
    assert 'https://www.t10.org/lists/asc-num.htm#ASCD_53' in error and 'do not power-cycle the library' in error

    assert rig.ok('requeue', '2') == 'requeued task 2\n'
    rig.wait_for({2: {'done'}})
    refused = rig.client('requeue', '1,2,9')
    assert (refused.returncode, refused.stderr) == (
        1, 'pytarchive: nothing requeued: task 1 is done; task 2 is done; task 9 does not exist '
           '(only failed or interrupted tasks can be requeued)\n')
    assert rig.ok('requeue', '--all') == 'requeued tasks 3, 4\n'
    tasks = rig.wait_for({3: {'done'}, 4: {'done'}})
    assert tasks[4]['result'] == 'TPN002L9 formatted'
    assert rig.ok('requeue', '--all') == 'no failed or interrupted tasks to requeue\n'


def test_sigterm_mid_task_empties_the_drive_then_exits_0_and_the_rest_waits(make_rig):
    rig = make_rig(index_write_seconds=1)
    rig.start_check_with_a_scan_behind_it()
    assert rig.stop() == 0
    assert not rig.drive().full and not rig.mounted() and not ltfs_processes(rig.mountpoint)

    rig.start()
    tasks = rig.wait_for({3: {'done'}})
    assert tasks[2]['state'] in ('done', 'interrupted')  # its step in progress may finish first
    if tasks[2]['state'] == 'interrupted':
        assert tasks[2]['error'] == 'the service was stopped before this task finished'


def test_a_tape_locked_by_a_killed_ltfs_is_released_at_the_next_start(make_rig):
    rig = make_rig(index_write_seconds=1)
    rig.start()
    rig.ok('format', 'TPN001L9')
    rig.wait_for({1: {'done'}})
    rig.ok('check', 'TPN001L9')
    deadline = time.monotonic() + 20
    while 'to write the index of' not in rig.log.read_text():  # unmounted; ltfs writes its index
        assert time.monotonic() < deadline, rig.log.read_text()
        time.sleep(0.02)
    rig.crash()
    killed = ltfs_processes(rig.mountpoint)
    assert killed
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    assert rig.drive().full

    rig.start()
    deadline = time.monotonic() + 30
    while rig.drive().full:
        assert time.monotonic() < deadline, rig.log.read_text()
        time.sleep(0.2)
    assert not rig.mounted()
    assert 'refuses to release the tape (ASC/ASCQ 53/03)' in rig.log.read_text()
    rig.ok('requeue', '2')
    assert rig.wait_for({2: {'done'}})[2]['result'].startswith('TPN001L9: ')


def test_the_service_refuses_a_bad_config_and_a_second_instance_in_one_line(make_rig, tmp_path):
    service = lambda config: subprocess.run([PYTHON, '-m', 'pytarchive.service', '--config', str(config)],  # noqa: E731
                                            cwd=REPO, capture_output=True, text=True, timeout=60)
    bad = tmp_path / 'bad.conf'
    bad.write_text('[Device]\nlibrary = /dev/sch0 # no drive_serial\n')
    done = service(bad)
    assert (done.returncode, done.stdout, done.stderr) == (
        3, '', f'pytarchive service: {bad}: [Device] drive_serial: is missing (required)\n')

    rig = make_rig()
    rig.start()
    done = service(rig.config)
    assert (done.returncode, done.stderr) == (
        1, f'pytarchive service: another pytarchive service is already using {rig.database}\n')
    assert rig.ok('queue') == 'the queue is empty\n'  # the first one is untouched
