"""qfs_filelock and the lock manager against a broken or hostile server (tests/hostile_proxy.py in
front of the emulator): replies without end, trickled, looping, of the wrong shape; 429s and
refused watches. Each ends in one line and the documented exit, in bounded time and memory, or
is ridden out by the watcher."""

import json
import pathlib
import subprocess
import sys
import threading
import time

import pytest

from common.auth import connect
from common.errors import ToolError
from tests.hostile_proxy import HostileProxy
from lockmanager.cluster import LockCluster
from tests.wormlock.rig import Watcher, assert_all_locked, create_files, no_watcher_left_running, wait_for  # noqa: F401
from wormlock.stream import ChangeStream, StreamEnded

PROJECT = pathlib.Path(__file__).resolve().parents[2]
MEMORY_LIMIT_KB = 600 * 1024  # a bounded reply is 64 MiB; an unbounded one grew to 4.2 GB


@pytest.fixture
def proxy(sim, tmp_path):
    hostile = HostileProxy(sim, tmp_path)
    yield hostile
    hostile.stop()


def run_tool(sim, proxy, tmp_path, *args, timeout=150):
    """Run a tool through the proxy; returns (exit status, stderr, peak RSS in KiB, seconds)."""
    config = sim.write_config(tmp_path / 'tool.ini', API_PORT=proxy.port)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, *args, '--config-file', str(config)], cwd=PROJECT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, rss_kb(proc.pid))
        if peak > MEMORY_LIMIT_KB or time.monotonic() - started > timeout:
            proc.kill()
            proc.wait()
            pytest.fail(f'{args[0]} {args[1]} still running after {time.monotonic() - started:.0f} s '
                        f'with {peak // 1024} MiB')
        time.sleep(0.1)
    return proc.returncode, proc.stderr.read(), peak, time.monotonic() - started


def rss_kb(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            return next(int(line.split()[1]) for line in f if line.startswith('VmRSS:'))
    except (OSError, StopIteration):
        return 0


def assert_one_line_exit_9(result, *words):
    status, stderr, peak, _ = result
    assert status == 9, stderr
    assert stderr.count('\n') == 1 and stderr.startswith('error: bad reply from the cluster'), stderr
    assert 'Traceback' not in stderr and all(w in stderr for w in words), stderr
    assert peak < MEMORY_LIMIT_KB


REPORT = ('qfs_filelock.py', '--report', '/drop')
LIST = ('qumulo_lock_manager.py', '--list')


@pytest.fixture
def tree(sim):
    drop = sim.root / 'drop'
    drop.mkdir()
    create_files(drop, 30)
    sim.control('smb/open', {'path': '/drop/d0/f00000.dat', 'user': 'alice', 'client': '10.0.0.5',
                             'access': 'write'})


def test_an_endless_reply_ends_in_one_line_and_exit_9_with_memory_bounded(sim, proxy, tmp_path, tree):
    proxy.rule('GET', r'/entries/', 'endless')
    proxy.rule('GET', r'^/v1/smb/files/', 'endless')
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *REPORT), 'larger than 64 MiB')
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *LIST), 'larger than 64 MiB')


def test_a_paging_loop_ends_in_one_line_and_exit_9(sim, proxy, tmp_path, tree):
    proxy.rule('GET', r'/entries/', 'loop')
    proxy.rule('GET', r'^/v1/smb/files/', 'loop')
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *REPORT), 'paging loop')
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *LIST), 'paging loop')


def test_a_paging_loop_in_the_lock_grants_ends_the_listing_with_exit_9(sim, proxy, tmp_path, tree):
    # Grant listings end at a short page, so the loop needs full ones: pages of one grant.
    sim.control('smb/open', {'path': '/drop/d1/f00001.dat', 'user': 'bob', 'client': '10.0.0.6'})
    proxy.rule('GET', r'/v1/files/locks/smb/share-mode', 'loop')
    client = connect(load(sim.write_config(tmp_path / 'tool.ini', API_PORT=proxy.port)))
    with pytest.raises(ToolError) as refused:
        LockCluster(client, page_size=1).fetch()
    assert refused.value.exit_code == 9 and 'paging loop' in refused.value.message


def test_a_trickled_reply_ends_in_one_line_and_exit_9_within_the_call_deadline(sim, proxy, tmp_path, tree):
    # One byte every 2 s: no read ever waits long enough for the 30 s socket timeout.
    proxy.trickle_every_s = 2
    proxy.rule('GET', r'/entries/', 'trickle')
    proxy.rule('GET', r'^/v1/smb/files/', 'trickle')
    results = {}
    tools = [threading.Thread(target=lambda a=args: results.__setitem__(a, run_tool(sim, proxy, tmp_path, *a)))
             for args in (REPORT, LIST)]
    for tool in tools:
        tool.start()
    for tool in tools:
        tool.join()
    for args in (REPORT, LIST):
        assert_one_line_exit_9(results[args], 'no complete reply within 60 s')
        assert results[args][3] < 100


@pytest.mark.parametrize('where, reply', [
    (r'/entries/', {'files': 'not a list', 'paging': {'next': ''}}),
    (r'/entries/', {'files': [1, 2], 'paging': {'next': ''}}),
    (r'/entries/', [1, 2, 3]),
    (r'/info/attributes\?retrieve-file-lock', {'path': '/drop/x', 'id': '1', 'size': 'many', 'lock': None}),
])
def test_a_report_on_a_reply_of_the_wrong_shape_exits_9(sim, proxy, tmp_path, tree, where, reply):
    proxy.rule('GET', where, ('reply', 200, reply, {}))
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *REPORT), 'not shaped as expected')


@pytest.mark.parametrize('reply', [
    {'file_handles': [{'file_number': 5}], 'paging': {'next': ''}},
    {'file_handles': None, 'paging': {'next': ''}},
    {'paging': {'next': ''}},
])
def test_a_listing_of_the_wrong_shape_exits_9(sim, proxy, tmp_path, tree, reply):
    proxy.rule('GET', r'^/v1/smb/files/', ('reply', 200, reply, {}))
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *LIST), 'not shaped as expected')


def test_429_with_retry_after_is_waited_out_and_nothing_fails(sim, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    watcher = Watcher(sim, tmp_path)
    sim.control('fail-next', {'count': 10, 'status': 429, 'retry_after': 2})
    paths = create_files(drop, 10)
    assert_all_locked(sim, watcher, paths, timeout=30)
    watcher.stop()
    assert not [r for r in watcher.records() if r['result'] == 'failed']
    text = watcher.log_text()
    assert text.count('the cluster is unavailable') == 1 and '429' in text, text


def test_retry_warnings_are_one_line_each(sim, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    watcher = Watcher(sim, tmp_path)
    sim.control('fail-next', {'count': 5, 'status': 503})
    paths = create_files(drop, 5)
    assert_all_locked(sim, watcher, paths, timeout=30)
    watcher.stop()
    text = watcher.log_text()
    assert 'answered 503 sim_injected_error' in text
    assert 'Backtrace' not in text and all(line[:4].isdigit() for line in text.splitlines()), text


@pytest.mark.parametrize('status, body, headers', [
    (429, {'error_class': 'too_many_requests', 'description': 'slow down'}, {'Retry-After': '1'}),
    (400, {'error_class': 'fs_watcher_missed_events_error', 'description': 'events were missed'}, {}),
    (503, ['not', 'an', 'object'], {}),
])
def test_a_refused_notify_is_waited_out_then_watched_and_rescanned(sim, proxy, tmp_path, status, body, headers):
    drop = sim.root / 'drop'
    drop.mkdir()
    watcher = Watcher(sim, tmp_path, port=proxy.port)
    proxy.rule('GET', r'/notify', ('reply', status, body, headers), count=2)
    sim.control('drop-streams')
    assert wait_for(lambda: watcher.log_text().count('watching /drop') >= 2, 30), watcher.log_text()
    paths = create_files(drop, 20)
    assert_all_locked(sim, watcher, paths, timeout=30)
    assert proxy.hits.get('reply') == 2 and watcher.log_text().count('catch-up scan of /drop') >= 2
    watcher.stop()


def test_a_notify_answer_trickled_is_given_up_after_the_open_deadline(sim, proxy, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    watcher = Watcher(sim, tmp_path, port=proxy.port)
    proxy.trickle_every_s = 2
    proxy.rule('GET', r'/notify', 'trickle', count=1)
    sim.control('drop-streams')
    assert wait_for(lambda: watcher.log_text().count('watching /drop') >= 2, 60), watcher.log_text()
    assert 'the notify request was not answered within 30 s' in watcher.log_text()
    paths = create_files(drop, 5)
    assert_all_locked(sim, watcher, paths, timeout=30)
    watcher.stop()


def test_a_notify_answer_of_404_ends_the_watcher_with_one_line_and_exit_8(sim, proxy, tmp_path):
    (sim.root / 'drop').mkdir()
    watcher = Watcher(sim, tmp_path, port=proxy.port)
    proxy.rule('GET', r'/notify', ('reply', 404, {'error_class': 'fs_no_such_entry_error',
                                                  'description': 'no such directory'}, {}))
    sim.control('drop-streams')
    watcher.proc.wait(30)
    stderr = watcher.proc.stderr.read()
    assert watcher.proc.returncode == 8, stderr
    assert stderr.count('\n') == 1 and 'the watched directory /drop' in stderr and 'no longer exists' in stderr


def test_a_200_mb_event_line_is_read_whole_in_linear_time(sim, proxy, tmp_path):
    # Timings are in bench/filelock.py; here it only has to finish (it took minutes when quadratic).
    (sim.root / 'drop').mkdir()
    big = json.dumps([{'type': 'child_file_added', 'path': 'x' * 200_000_000, 'spine': ['1', '2']}])
    proxy.rule('GET', r'/notify', ('stream', [b': watching\n\n', b'data: ' + big.encode() + b'\n\n',
                                              b'data: {"not": "a list"}\n\n']))
    config = load(sim.write_config(tmp_path / 'tool.ini', API_PORT=proxy.port))
    token = sim.client().credentials.bearer_token
    read = []

    def read_stream():
        with ChangeStream(config, token, '2', False, ()) as stream:
            batches = stream.batches()
            read.append(next(batches))
            read.append(next(batches))
            with pytest.raises(StreamEnded):
                next(batches)
            read.append('ended')

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    reader.join(120)
    assert len(read) == 3, 'the stream was not read within 120 s'
    assert len(read[0][0]['path']) == 200_000_000
    assert read[1] == {'not': 'a list'}  # handed over as it is: judging it is the watcher's


def load(path):
    from common.config import load_cluster_config
    return load_cluster_config(path)


def test_the_watcher_survives_replies_of_the_wrong_shape_to_its_lock_calls(sim, proxy, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    watcher = Watcher(sim, tmp_path, port=proxy.port)
    proxy.rule('GET', r'/info/attributes\?retrieve-file-lock', ('reply', 200, {'id': []}, {}), count=5)
    paths = create_files(drop, 5)
    assert_all_locked(sim, watcher, paths, timeout=60)
    assert proxy.hits['reply'] == 5 and 'not shaped as expected' in watcher.log_text()
    watcher.stop()
