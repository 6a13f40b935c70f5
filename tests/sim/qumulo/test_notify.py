"""Change notify (sim/qumulo/models/notify.py): real changes under the backing directory, as a
stream of server-sent events."""

import json
import os
import time

import pytest
import requests

from inotify_simple import Event, flags

from sim.qumulo.models.files import FileSystem
from sim.qumulo.models.notify import ChangeHub
from tests.sim.qumulo.conftest import error_of, make_files


TYPES_BUT_SIZE = (
    'child_file_added',
    'child_dir_added',
    'child_file_removed',
    'child_data_written',
    'child_dir_moved_to',
    'child_file_moved_to',
)


class EventLines:
    """Lines of an SSE reply as soon as each arrives (requests' iter_lines waits for 512 bytes)."""

    def __init__(self, response):
        self.response = response
        self._chunks = response.iter_content(chunk_size=None)
        self._buffer = ''

    def __iter__(self):
        return self

    def __next__(self):
        while '\n' not in self._buffer:
            self._buffer += next(self._chunks).decode()
        line, self._buffer = self._buffer.split('\n', 1)
        return line


def read_events(lines, count, timeout=10):
    events, deadline = [], time.monotonic() + timeout
    for line in lines:
        if line.startswith('data: '):
            events.extend(json.loads(line[6:]))
        if len(events) >= count or time.monotonic() > deadline:
            break
    return events


def open_stream(sim, path, recursive, types=()):
    token = sim.client().credentials.bearer_token
    query = f'recursive={recursive}' + (f'&filter={",".join(types)}' if types else '')
    response = requests.get(
        f'{sim.url}/v1/files/{requests.utils.quote(path, safe="")}/notify?{query}',
        headers={'Authorization': f'Bearer {token}'},
        verify=str(sim.cert_path),
        stream=True,
        timeout=15,
    )
    assert response.headers['Content-Type'] == 'text/event-source'
    lines = EventLines(response)
    assert next(lines).startswith(': watching')
    return lines


def id_of(sim, path):
    return sim.client().fs.get_file_attr(path=path)['id']


def test_notify_reports_real_changes_with_ids_and_relative_paths(sim):
    (sim.root / 'watched/sub').mkdir(parents=True)
    stream = open_stream(sim, '/watched', True)
    (sim.root / 'watched/sub/tmp.part').write_bytes(b'data')
    os.rename(sim.root / 'watched/sub/tmp.part', sim.root / 'watched/sub/final.dat')
    events = read_events(stream, 5)
    assert [e['type'] for e in events] == [
        'child_file_added',
        'child_data_written',
        'child_size_changed',
        'child_file_moved_from',
        'child_file_moved_to',
    ]
    assert events[0]['path'] == 'sub/tmp.part' and events[4]['path'] == 'sub/final.dat'
    final_id = id_of(sim, '/watched/sub/final.dat')
    assert all(e['spine'][-1] == final_id for e in events)
    assert events[0]['spine'][:2] == [id_of(sim, '/watched'), id_of(sim, '/watched/sub')]
    assert all(e['stream_name'] is None for e in events)


def test_locking_a_file_is_not_announced_as_a_change(sim):
    make_files(sim.root, ['quiet/a.txt'])
    stream = open_stream(sim, '/quiet', False)
    rc = sim.client()
    rc.fs.modify_file_lock(path='/quiet/a.txt', legal_hold=True)
    rc.fs.modify_file_lock(path='/quiet/a.txt', retention_period='2031-01-01T00:00:00Z')
    os.utime(sim.root / 'quiet/a.txt', (1, 1))
    events = read_events(stream, 2)
    assert [(e['type'], e['path']) for e in events] == [
        ('child_mtime_changed', 'a.txt'),
        ('child_atime_changed', 'a.txt'),
    ]


def test_notify_filter_and_non_recursive_scope(sim):
    (sim.root / 'top/deep').mkdir(parents=True)
    stream = open_stream(sim, '/top', False, ['child_file_added'])
    make_files(sim.root, ['top/deep/ignored.txt', 'top/seen.txt'])
    events = read_events(stream, 1)
    assert [(e['type'], e['path']) for e in events] == [('child_file_added', 'seen.txt')]


def test_files_in_a_new_directory_are_not_missed(sim):
    stream = open_stream(sim, '/', True, ['child_file_added', 'child_dir_added'])
    expected = [f'burst/n{i}/f.txt' for i in range(20)]
    make_files(sim.root, expected)
    events = read_events(stream, 20 + 21)  # the files and their 21 directories
    assert sorted(e['path'] for e in events if e['path'].endswith('f.txt')) == sorted(expected)


def test_drop_streams_ends_the_stream(sim):
    stream = open_stream(sim, '/', False)
    assert sim.control('drop-streams')['dropped'] == 1
    assert [line for line in stream if line] == []  # the server ended it cleanly, nothing more


def test_keepalive_comments_arrive_while_idle(sim):
    stream = open_stream(sim, '/', False)
    assert [next(stream) for _ in range(2)] == ['', ': keepalive']


def test_a_directory_moved_in_is_announced_but_not_its_contents(sim):
    # As on a real cluster: a moved directory arrives as one child_dir_moved_to; what it holds
    # is not announced (a watcher must look into it), what is written into it later is.
    # From elsewhere in the cluster, and from outside the emulator's directory (as if it had
    # always been in the cluster): the same answer.
    make_files(sim.root, ['outside/batch/a.txt', 'outside/batch/sub/b.txt'])
    make_files(sim.root.parent, ['elsewhere/batch2/c.txt', 'elsewhere/batch2/sub/d.txt'])
    (sim.root / 'watched').mkdir()
    stream = open_stream(sim, '/watched', True, TYPES_BUT_SIZE)
    os.rename(sim.root / 'outside/batch', sim.root / 'watched/batch')
    os.rename(sim.root.parent / 'elsewhere/batch2', sim.root / 'watched/batch2')
    time.sleep(0.5)  # the emulator has read the moves and watches the new directories
    make_files(sim.root, ['watched/batch/sub/later.txt', 'watched/batch2/sub/later2.txt'])
    events = read_events(stream, 6)
    assert [(e['type'], e['path']) for e in events] == [
        ('child_dir_moved_to', 'batch'),
        ('child_dir_moved_to', 'batch2'),
        ('child_file_added', 'batch/sub/later.txt'),
        ('child_data_written', 'batch/sub/later.txt'),
        ('child_file_added', 'batch2/sub/later2.txt'),
        ('child_data_written', 'batch2/sub/later2.txt'),
    ]
    assert events[1]['spine'][-1] == id_of(sim, '/watched/batch2')
    assert events[4]['spine'][-2] == id_of(sim, '/watched/batch2/sub')
    held_id = id_of(sim, '/watched/batch2/c.txt')
    os.unlink(sim.root / 'watched/batch2/c.txt')  # a file it held is still named by its id when removed
    assert [(e['type'], e['path'], e['spine'][-1]) for e in read_events(stream, 1)] == [
        ('child_file_removed', 'batch2/c.txt', held_id)
    ]


def test_notify_inject_writes_a_raw_line_into_every_open_stream(sim):
    streams = [open_stream(sim, '/', False), open_stream(sim, '/', True)]
    assert sim.control('notify/inject', {'line': 'data: {"not": "a list"}'}) == {'streams': 2}
    make_files(sim.root, ['after.txt'])
    for stream in streams:
        assert next(line for line in stream if line.startswith('data: ')) == 'data: {"not": "a list"}'
        assert read_events(stream, 1)[0]['path'] == 'after.txt'  # the stream goes on
    for bad in ({}, {'line': 5}, {'line': 'two\nlines'}):
        with pytest.raises(Exception, match='400'):
            sim.control('notify/inject', bad)


def test_sdk_change_iterator_reads_the_stream(sim):
    rc = sim.client()
    changes = rc.fs.get_change_notify_listener(recursive=False, path='/')
    assert changes.started()
    make_files(sim.root, ['sdk.txt'])
    batch = next(changes)
    assert batch[0]['type'] == 'child_file_added' and batch[0]['path'] == 'sdk.txt'


def test_recursive_mode_setting_is_honoured(sim):
    rc = sim.client()
    assert rc.fs.get_notify_settings()['recursive_mode'] == 'ENABLED'
    rc.fs.set_notify_settings(recursive_mode='DISABLED_ERROR')
    assert error_of(lambda: rc.fs.get_change_notify_listener(recursive=True, path='/')).status_code == 400
    assert (
        error_of(lambda: sim.client('viewer', 'viewer').fs.set_notify_settings(recursive_mode='ENABLED')).status_code
        == 403
    )
    rc.fs.set_notify_settings(recursive_mode='ENABLED')
    error = error_of(lambda: sim.client('viewer', 'viewer').fs.get_change_notify_listener(recursive=True, path='/'))
    assert error.status_code == 403 and 'DATA_ADMINISTRATOR' in error.description


def test_disabled_ignore_silently_drops_recursion(sim):
    (sim.root / 'top/deep').mkdir(parents=True)
    sim.client().fs.set_notify_settings(recursive_mode='DISABLED_IGNORE')
    stream = open_stream(sim, '/top', True)
    make_files(sim.root, ['top/deep/unseen.txt', 'top/seen.txt'])
    assert {e['path'] for e in read_events(stream, 2)} == {'seen.txt'}


def types_after(stream, change, count):
    change()
    return [e['type'] for e in read_events(stream, count)]


def test_each_kind_of_change_is_named_as_a_cluster_names_it(sim):
    make_files(sim.root, ['kinds/f.txt'], b'0123456789')
    stream = open_stream(sim, '/kinds', False)
    path = sim.root / 'kinds/f.txt'
    rc = sim.client()
    assert types_after(stream, lambda: os.chmod(path, 0o600), 1) == ['child_acl_changed']
    assert types_after(stream, lambda: os.chown(path, 4242, -1), 1) == ['child_owner_changed']
    assert types_after(stream, lambda: os.chown(path, -1, 4343), 1) == ['child_group_changed']
    assert types_after(stream, lambda: os.utime(path, ns=(os.stat(path).st_atime_ns, 10**18)), 1) == [
        'child_mtime_changed'
    ]
    assert types_after(stream, lambda: os.utime(path, ns=(10**18, 10**18)), 1) == ['child_atime_changed']
    assert types_after(stream, lambda: os.setxattr(path, 'user.project', b'x'), 1) == ['child_extra_attrs_changed']
    assert types_after(stream, lambda: os.truncate(path, 4), 1) == ['child_size_changed']
    with open(path, 'ab') as f:
        assert types_after(stream, lambda: (f.write(b'more'), f.flush()), 2) == [
            'child_data_written',
            'child_size_changed',
        ]
    with open(path, 'r+b') as f:
        assert types_after(stream, lambda: (f.write(b'AB'), f.flush()), 1) == ['child_data_written']
    assert types_after(
        stream, lambda: rc.fs.set_file_attr(path='/kinds/f.txt', creation_time='2001-01-01T00:00:00Z'), 1
    ) == ['child_btime_changed']
    hide = lambda: rc.fs.set_file_attr(path='/kinds/f.txt', extended_attributes={'hidden': True})  # noqa: E731
    assert types_after(stream, hide, 1) == ['child_extra_attrs_changed']
    acl = [{'type': 'ALLOWED', 'trustee': 'Everyone', 'rights': ['READ']}]
    assert types_after(stream, lambda: sim.control('fs/permissions', {'path': '/kinds/f.txt', 'acl': acl}), 1) == [
        'child_acl_changed'
    ]
    assert types_after(stream, lambda: os.unlink(path), 1) == ['child_file_removed']


def test_unknown_filter_types_are_refused_and_stream_types_are_valid(sim):
    rc = sim.client()
    error = error_of(
        lambda: rc.fs.get_change_notify_listener(recursive=False, path='/', type_filter=['child_file_add'])
    )
    assert error.status_code == 400 and 'child_file_add' in error.description
    assert rc.fs.get_change_notify_listener(recursive=False, path='/', type_filter=['child_stream_added']).started()


def test_self_removed_ends_the_stream(sim):
    (sim.root / 'doomed').mkdir()
    stream = open_stream(sim, '/doomed', False)
    os.rmdir(sim.root / 'doomed')
    lines = [line for line in stream if line.startswith('data: ')]  # read until the server ends it
    assert [e['type'] for line in lines for e in json.loads(line[6:])] == ['self_removed']


def test_a_watch_follows_its_directory_when_it_or_its_parent_is_renamed(sim):
    (sim.root / 'parent/watched').mkdir(parents=True)
    stream = open_stream(sim, '/parent/watched', False, ['child_file_added'])
    os.rename(sim.root / 'parent/watched', sim.root / 'parent/renamed')
    make_files(sim.root, ['parent/renamed/one.txt'])
    assert [e['path'] for e in read_events(stream, 1)] == ['one.txt']
    os.rename(sim.root / 'parent', sim.root / 'moved-parent')
    make_files(sim.root, ['moved-parent/renamed/two.txt'])
    assert [e['path'] for e in read_events(stream, 1)] == ['two.txt']


def test_a_watcher_that_falls_behind_is_cut_off_and_told_on_its_next_contact(sim):
    (sim.root / 'busy').mkdir()
    rc = sim.client()
    sim.control('notify/limit', {'events': 20})
    stream = open_stream_for(sim, rc, '/busy', ['child_file_added'])
    sim.control('notify/stall', {'seconds': 2})
    make_files(sim.root, [f'busy/f{i:03d}' for i in range(60)])
    lines = list(stream)  # the server ends the stream once the stall is over
    delivered = [e for line in lines if line.startswith('data: ') for e in json.loads(line[6:])]
    assert 0 < len(delivered) < 60  # what was queued before the limit, and no more
    assert any('fs_watcher_missed_events_error' in line for line in lines)
    error = error_of(lambda: rc.fs.get_change_notify_listener(recursive=False, path='/busy'))
    assert (error.status_code, error.error_class) == (400, 'fs_watcher_missed_events_error')
    assert rc.fs.get_change_notify_listener(recursive=False, path='/busy').started()  # told once


def open_stream_for(sim, rc, path, types):
    response = requests.get(
        f'{sim.url}/v1/files/{requests.utils.quote(path, safe="")}/notify?recursive=false&filter={",".join(types)}',
        headers={'Authorization': f'Bearer {rc.credentials.bearer_token}'},
        verify=str(sim.cert_path),
        stream=True,
        timeout=15,
    )
    lines = EventLines(response)
    assert next(lines).startswith(': watching')
    return lines


def test_control_calls_for_streams_check_their_input(sim):
    for path, bad in (('notify/limit', {'events': 0}), ('notify/stall', {'seconds': -1}), ('notify/stall', {})):
        with pytest.raises(Exception, match='400'):
            sim.control(path, bad)


def test_a_file_created_and_renamed_before_its_id_was_read_is_named_by_its_id(tmp_path):
    """The kernel's events for a create and for the rename that follows can come in two reads: by
    the time the create is read the file is gone, and the rename came later than the wait for it.
    The rename is still announced with the file's id (a watcher takes an event without one as
    malformed, and would never lock the file)."""
    (tmp_path / 'drop').mkdir()
    (tmp_path / 'drop' / 'later.txt').write_text('created as later.tmp, renamed at once')
    hub = ChangeHub(FileSystem(str(tmp_path)))
    moved = [
        Event(hub._wd_of_dir[str(tmp_path)], flags.MOVED_FROM, 7, 'later.tmp'),
        Event(hub._wd_of_dir[str(tmp_path / 'drop')], flags.MOVED_TO, 7, 'later.txt'),
    ]
    changes = hub._translate(moved)
    named = {kind: file_id for _, _, file_id, kind in changes}
    assert (
        named['child_file_moved_to']
        == named['child_file_moved_from']
        == hub.fs.id_of(str(tmp_path / 'drop' / 'later.txt'))
    )
