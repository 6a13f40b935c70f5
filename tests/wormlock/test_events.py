"""qfs_filelock's reading of the change stream, as a real process against the emulator: a
directory moved in, hard links, malformed events, a worker whose audit log cannot be written."""

import json
import os
import re

import pytest

from tests.wormlock.rig import Watcher, assert_all_locked, locks_on_cluster, wait_for


@pytest.fixture
def start(sim, tmp_path):
    """start(directory, *flags) -> a running Watcher; one a failed test left running is killed."""
    started = []

    def start(directory, *extra):
        started.append(Watcher(sim, tmp_path, directory, *extra))
        return started[-1]

    yield start
    for watcher in started:
        if watcher.proc.poll() is None:
            watcher.kill()


def test_a_directory_moved_into_the_watch_is_looked_into_at_once(sim, start):
    # A cluster announces only the directory, not the 30 files it holds; the hourly rescan is
    # far away (--rescan-every 3600), so only looking into the directory at once locks them.
    drop, staging = sim.root / 'drop', sim.root / 'staging' / 'batch'
    (staging / 'sub').mkdir(parents=True)
    drop.mkdir()
    names = [f'f{i:02d}.dat' for i in range(25)] + [f'sub/g{i}.dat' for i in range(5)]
    for name in names:
        (staging / name).write_bytes(name.encode())
    watcher = start('/drop', '--rescan-every', '3600')
    assert wait_for(lambda: 'catch-up scan of /drop: 0 files' in watcher.log_text(), 20)
    os.rename(staging, drop / 'batch')
    assert_all_locked(sim, watcher, [f'/drop/batch/{name}' for name in names], timeout=20)
    assert watcher.log_text().count('catch-up scan of /drop:') == 1, 'locked by a rescan, not by the move'
    watcher.stop()


@pytest.mark.slow
def test_a_file_delivered_through_a_hard_link_is_locked_under_its_surviving_name(sim, start):
    # Maildir delivery: write tmp/x, `ln tmp/x new/x`, `rm tmp/x`. The removal of one name must
    # not drop the file while another name remains.
    maildir = sim.root / 'maildir'
    for sub in ('tmp', 'new'):
        (maildir / sub).mkdir(parents=True)
    watcher = start('/maildir', '--interval', '2')
    assert wait_for(lambda: 'catch-up scan of /maildir: 0 files' in watcher.log_text(), 20)
    for i in range(20):
        temp = maildir / 'tmp' / f'{i}.host'
        temp.write_bytes(b'From: a@b\n\nmessage %d\n' % i)
        os.link(temp, maildir / 'new' / f'{i}.host')
        os.unlink(temp)
    delivered = [f'/maildir/new/{i}.host' for i in range(20)]
    assert_all_locked(sim, watcher, delivered, timeout=30)
    watcher.stop()
    assert not [r for r in watcher.records() if r['result'] == 'failed']


MALFORMED = [
    'data: {"type": "child_file_added", "path": "x", "spine": ["1"]}',  # an object, not a list
    'data: [1, 2]',
    'data: null',
    'data: 42',
    'data: "child_file_added"',
    'data: [null]',
    'data: [{"type": "child_file_added", "path": "a.txt", "spine": 7}]',
    'data: [{"type": "child_file_added", "path": 7, "spine": ["1", "2"]}]',
    'data: [{"type": ["child_file_added"], "path": "a.txt", "spine": ["1", "2"]}]',
    'data: [{"type": "child_file_added", "path": "a.txt", "spine": ["1", 2]}]',
    'data: [{"type": "child_file_added", "path": "a.txt", "spine": ["1", "../../v1/session"]}]',
    'data: [{"type": "child_file_added", "path": "../../etc/outside.txt", "spine": ["1", ""]}]',
    'data: [{"type": "child_file_added", "path": "/etc/outside.txt", "spine": ["1", ""]}]',
]


def test_malformed_events_are_logged_in_one_line_each_and_skipped(sim, start, drop):
    (sim.root / 'etc').mkdir()
    (sim.root / 'etc' / 'outside.txt').write_text('outside the watched directory: never locked')
    # Only moves start a lock here, so the file created in place below is locked only if the
    # injected event naming it is acted on.
    watcher = start('/drop', '--rescan-every', '3600', '--events', 'child_file_moved_to')
    assert wait_for(lambda: 'catch-up scan of /drop' in watcher.log_text(), 20)
    for line in MALFORMED:
        assert sim.control('notify/inject', {'line': line}) == {'streams': 1}
    # One good event in the same line as a bad one is still acted on.
    (drop / 'kept.txt').write_text('named by a well-formed event next to a malformed one')
    kept_id = sim.client().fs.get_file_attr(path='/drop/kept.txt')['id']
    mixed = [42, {'type': 'child_file_moved_to', 'path': 'kept.txt', 'spine': ['1', kept_id], 'stream_name': None}]
    sim.control('notify/inject', {'line': 'data: ' + json.dumps(mixed)})
    (sim.root / 'later.tmp').write_text('moved in after the malformed events')
    os.rename(sim.root / 'later.tmp', drop / 'later.txt')
    assert_all_locked(sim, watcher, ['/drop/kept.txt', '/drop/later.txt'], timeout=20)
    assert watcher.proc.poll() is None, 'the watcher ended'
    log = watcher.log_text()
    skipped = [line for line in log.splitlines() if 'ignored a malformed notify event' in line]
    assert len(skipped) == len(MALFORMED) + 1, '\n'.join(skipped)
    assert all(len(line) < 400 for line in skipped)
    assert 'unexpected' not in log and 'Traceback' not in log
    assert 'reconnecting' not in log, 'a malformed event must not cost the stream'
    watcher.stop()
    assert locks_on_cluster(sim, ['/etc/outside.txt'])['/etc/outside.txt'] == {
        'legal_hold': False,
        'retention_period': None,
    }


def test_a_worker_goes_on_when_the_audit_log_cannot_be_written(sim, start, drop):
    # /dev/full: every write fails with ENOSPC. A worker that died on the first record would,
    # silently, lock no later file; the record must reach the log instead and locking go on.
    watcher = start('/drop', '--workers', '1', '--audit-log', '/dev/full')
    paths = []
    for i in range(3):
        (drop / f'r{i}.txt').write_text(str(i))
        paths.append(f'/drop/r{i}.txt')
        assert wait_for(lambda: locks_on_cluster(sim, paths[-1:])[paths[-1]]['retention_period'], 20), paths[-1]
    log = watcher.log_text()
    failures = re.findall(
        r'ERROR - could not write the audit log /dev/full \(No space left on device\); '
        r'the record: (\{.*\})\n',
        log,
    )
    assert {json.loads(record)['path'] for record in failures} >= set(paths), log
    watcher.stop()
    assert 'Traceback' not in log
