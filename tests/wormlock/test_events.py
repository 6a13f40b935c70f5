"""qfs_filelock's reading of the change stream, as a real process against the emulator: a
directory moved in, hard links, malformed events, a worker whose audit log cannot be written, and
the event vocabulary (Qumulo's 24 types: what --events accepts, what the filter asks for, which
changes keep a file from settling)."""

import datetime as dt
import itertools
import json
import os
import re
import time

import pytest
from qumulo.commands.fs import FSNotifyFilters

from tests.wormlock.rig import Watcher, assert_all_locked, locks_on_cluster, wait_for
from wormlock.watcher import ACTIVITY_EVENTS, DEFAULT_EVENTS, EVENT_TYPES, FOLLOWED_EVENTS, WatchOptions
from wormlock.watcher import Watcher as WatchLoop


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
    # The cluster holds the lock a moment before the worker has written its record.
    wait_for(lambda: all(f'"path": "{path}"' in watcher.log_text() for path in paths), 10)
    log = watcher.log_text()
    failures = re.findall(
        r'ERROR - could not write the audit log /dev/full \(No space left on device\); '
        r'the record: (\{.*\})\n',
        log,
    )
    assert {json.loads(record)['path'] for record in failures} >= set(paths), log
    watcher.stop()
    assert 'Traceback' not in log


# --- the event vocabulary --------------------------------------------------------------------
def test_the_event_types_are_qumulos_24():
    assert len(EVENT_TYPES) == 24 and set(EVENT_TYPES) == {f.name for f in FSNotifyFilters}
    assert set(DEFAULT_EVENTS) | ACTIVITY_EVENTS | FOLLOWED_EVENTS <= set(EVENT_TYPES)


@pytest.mark.parametrize(
    'events, settle, recursive',
    list(itertools.product([DEFAULT_EVENTS, ('child_size_changed',), EVENT_TYPES], [None, 1.0], [False, True])),
)
def test_the_notify_filter_names_only_qumulos_types(events, settle, recursive):
    # A cluster refuses a filter naming a type it does not know (400): the watcher would never start.
    types = WatchLoop(None, None, WatchOptions(events=events, settle_s=settle, recursive=recursive), None, None, None)
    types = types.stream_types()
    assert set(types) <= set(EVENT_TYPES) and len(set(types)) == len(types)
    assert set(events) <= set(types)
    if settle:
        # A file still written (data, size) or still being put in place by a copy (times, ACL,
        # owner, extended attributes) is not finished; a file merely read is.
        assert {'child_data_written', 'child_size_changed', 'child_acl_changed', 'child_owner_changed'} <= set(types)
        assert 'child_atime_changed' not in ACTIVITY_EVENTS


def test_every_one_of_the_24_types_is_accepted_by_events_and_by_the_cluster(sim, start, drop):
    watcher = start('/drop', '--settle', '1', '--events', ','.join(EVENT_TYPES))
    assert wait_for(lambda: 'catch-up scan of /drop' in watcher.log_text(), 20)
    (drop / 'sub').mkdir()
    (drop / 'sub' / 'all.txt').write_text('announced by every kind of event')
    assert_all_locked(sim, watcher, ['/drop/sub/all.txt'], timeout=20)
    assert 'refused' not in watcher.log_text() and watcher.proc.poll() is None
    watcher.stop()


def test_child_size_changed_alone_starts_a_lock(sim, start, drop):
    # Qumulo recommends child_data_written or child_size_changed for WORM workflows.
    watcher = start('/drop', '--events', 'child_size_changed', '--rescan-every', '3600')
    assert wait_for(lambda: 'catch-up scan of /drop: 0 files' in watcher.log_text(), 20)
    (drop / 'grown.bin').write_bytes(b'x' * 4096)
    assert_all_locked(sim, watcher, ['/drop/grown.bin'], timeout=20)
    assert watcher.log_text().count('catch-up scan of /drop') == 1, 'locked by a rescan, not by the event'
    watcher.stop()


@pytest.mark.slow
def test_settle_waits_while_a_copy_still_sets_the_files_attributes(sim, start, drop):
    # A copy writes the data, then sets the file's permissions, extended attributes and owner:
    # a lock in between would make the copy fail. Each of those changes restarts the quiet clock.
    watcher = start('/drop', '--settle', '1.5', '--rescan-every', '3600')
    assert wait_for(lambda: 'catch-up scan of /drop: 0 files' in watcher.log_text(), 20)
    target = drop / 'copied.dat'
    target.write_bytes(b'payload' * 100)
    for change in (
        lambda: os.chmod(target, 0o600),  # child_acl_changed
        lambda: os.setxattr(target, 'user.origin', b'copied'),  # child_extra_attrs_changed
        lambda: os.chown(target, 1000, -1),  # child_owner_changed
    ):
        time.sleep(0.7)
        assert locks_on_cluster(sim, ['/drop/copied.dat'])['/drop/copied.dat']['retention_period'] is None, (
            'locked while the copy was still setting its attributes'
        )
        change()
    last_change = dt.datetime.now(dt.timezone.utc)
    assert wait_for(lambda: '/drop/copied.dat' in watcher.locked_paths(), 20)
    record = next(r for r in watcher.records() if r['path'] == '/drop/copied.dat' and r['result'] == 'locked')
    locked_at = dt.datetime.strptime(record['time'], '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=dt.timezone.utc)
    assert (locked_at - last_change).total_seconds() >= 1.2, 'locked before it had been quiet for --settle'
    watcher.stop()
