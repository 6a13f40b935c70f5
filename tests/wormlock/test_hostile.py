"""qfs_filelock against a broken or hostile server (tests/hostile_proxy.py in front of the
emulator): replies without end, trickled, looping, of the wrong shape; 429s and refused watches.
Each ends in one line and the documented exit, in bounded time and memory, or is ridden out by
the watcher. The lock manager's side is tests/lockmanager/test_hostile.py."""

import json
import threading

import pytest

from common.config import load_cluster_config
from tests.hostile_proxy import assert_one_line_exit_9, hostile_proxy, run_tool, run_trickled
from tests.wormlock.rig import Watcher, assert_all_locked, create_files, wait_for
from wormlock.cli import PROG
from wormlock.stream import ChangeStream, StreamEnded

REPORT = ('qfs_filelock.py', '--report', '/drop')


@pytest.fixture
def proxy(sim, tmp_path):
    with hostile_proxy(sim, tmp_path) as hostile:
        yield hostile


@pytest.fixture
def tree(drop):
    create_files(drop, 30)


@pytest.mark.slow
def test_an_endless_reply_to_a_report_ends_in_one_line_and_exit_9_with_memory_bounded(sim, proxy, tmp_path, tree):
    proxy.rule('GET', r'/entries/', 'endless')
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *REPORT), PROG, 'larger than 64 MiB')


def test_a_paging_loop_in_a_report_ends_in_one_line_and_exit_9(sim, proxy, tmp_path, tree):
    proxy.rule('GET', r'/entries/', 'loop')
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *REPORT), PROG, 'paging loop')


@pytest.mark.slow
def test_a_trickled_reply_to_a_report_ends_in_one_line_and_exit_9_within_the_call_deadline(sim, proxy, tmp_path, tree):
    result = run_trickled(sim, proxy, tmp_path, r'/entries/', *REPORT)
    assert_one_line_exit_9(result, PROG, 'no complete reply within 60 s')
    assert result[3] < 100


@pytest.mark.parametrize(
    'where, reply',
    [
        (r'/entries/', {'files': 'not a list', 'paging': {'next': ''}}),
        (r'/entries/', {'files': [1, 2], 'paging': {'next': ''}}),
        (r'/entries/', [1, 2, 3]),
        (r'/info/attributes\?retrieve-file-lock', {'path': '/drop/x', 'id': '1', 'size': 'many', 'lock': None}),
    ],
)
def test_a_report_on_a_reply_of_the_wrong_shape_exits_9(sim, proxy, tmp_path, tree, where, reply):
    proxy.rule('GET', where, ('reply', 200, reply, {}))
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *REPORT), PROG, 'not shaped as expected')


@pytest.mark.slow
def test_429_with_retry_after_is_waited_out_and_nothing_fails(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path)
    sim.control('fail-next', {'count': 10, 'status': 429, 'retry_after': 2})
    paths = create_files(drop, 10)
    assert_all_locked(sim, watcher, paths, timeout=30)
    watcher.stop()
    assert not [r for r in watcher.records() if r['result'] == 'failed']
    text = watcher.log_text()
    assert text.count('the cluster is unavailable') == 1 and '429' in text, text


@pytest.mark.slow
def test_retry_warnings_are_one_line_each(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path)
    sim.control('fail-next', {'count': 5, 'status': 503})
    paths = create_files(drop, 5)
    assert_all_locked(sim, watcher, paths, timeout=30)
    watcher.stop()
    text = watcher.log_text()
    assert 'answered 503 sim_injected_error' in text
    assert 'Backtrace' not in text and all(line[:4].isdigit() for line in text.splitlines()), text


@pytest.mark.parametrize(
    'status, body, headers',
    [
        (429, {'error_class': 'too_many_requests', 'description': 'slow down'}, {'Retry-After': '1'}),
        (400, {'error_class': 'fs_watcher_missed_events_error', 'description': 'events were missed'}, {}),
        (503, ['not', 'an', 'object'], {}),
    ],
)
@pytest.mark.slow
def test_a_refused_notify_is_waited_out_then_watched_and_rescanned(sim, proxy, tmp_path, status, body, headers, drop):
    watcher = Watcher(sim, tmp_path, port=proxy.port)
    proxy.rule('GET', r'/notify', ('reply', status, body, headers), count=2)
    sim.control('drop-streams')
    assert wait_for(lambda: watcher.log_text().count('watching /drop') >= 2, 30), watcher.log_text()
    paths = create_files(drop, 20)
    assert_all_locked(sim, watcher, paths, timeout=30)
    # The reconnect's catch-up scan runs on its own thread: the events may have locked the files
    # before it logs its line.
    assert wait_for(lambda: watcher.log_text().count('catch-up scan of /drop') >= 2, 30), watcher.log_text()
    assert proxy.hits.get('reply') == 2
    watcher.stop()


@pytest.mark.slow
def test_a_notify_answer_trickled_is_given_up_after_the_open_deadline(sim, proxy, tmp_path, drop):
    watcher = Watcher(sim, tmp_path, port=proxy.port)
    proxy.trickle_every_s = 2
    proxy.rule('GET', r'/notify', 'trickle', count=1)
    sim.control('drop-streams')
    assert wait_for(lambda: watcher.log_text().count('watching /drop') >= 2, 60), watcher.log_text()
    assert 'the notify request was not answered within 30 s' in watcher.log_text()
    paths = create_files(drop, 5)
    assert_all_locked(sim, watcher, paths, timeout=30)
    watcher.stop()


def test_a_notify_answer_of_404_ends_the_watcher_with_one_line_and_exit_8(sim, proxy, tmp_path, drop):
    watcher = Watcher(sim, tmp_path, port=proxy.port)
    proxy.rule(
        'GET',
        r'/notify',
        ('reply', 404, {'error_class': 'fs_no_such_entry_error', 'description': 'no such directory'}, {}),
    )
    sim.control('drop-streams')
    watcher.proc.wait(30)
    stderr = watcher.proc.stderr.read()
    assert watcher.proc.returncode == 8, stderr
    assert stderr.count('\n') == 1 and stderr.startswith(f'{PROG}: error: the watched directory /drop'), stderr
    assert 'no longer exists' in stderr, stderr


@pytest.mark.slow
def test_a_200_mb_event_line_is_read_whole_in_linear_time(sim, proxy, tmp_path, drop):
    # Timings are in bench/wormlock.py; here it only has to finish (a reader quadratic in the line's length takes minutes).
    big = json.dumps([{'type': 'child_file_added', 'path': 'x' * 200_000_000, 'spine': ['1', '2']}])
    proxy.rule(
        'GET',
        r'/notify',
        ('stream', [b': watching\n\n', b'data: ' + big.encode() + b'\n\n', b'data: {"not": "a list"}\n\n']),
    )
    config = load_cluster_config(sim.write_config(tmp_path / 'tool.ini', API_PORT=proxy.port))
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


@pytest.mark.slow
def test_the_watcher_survives_replies_of_the_wrong_shape_to_its_lock_calls(sim, proxy, tmp_path, drop):
    watcher = Watcher(sim, tmp_path, port=proxy.port)
    # A file an event names is locked in one call (no read first): its answer is what comes malformed.
    proxy.rule('PATCH', r'/file-lock', ('reply', 200, {'id': []}, {}), count=5)
    paths = create_files(drop, 5)
    assert_all_locked(sim, watcher, paths, timeout=60)
    assert proxy.hits['reply'] == 5 and 'not shaped as expected' in watcher.log_text()
    watcher.stop()
