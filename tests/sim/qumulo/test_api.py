"""sim/qumulo behaves like a cluster to the official SDK: sessions, files, locks, SMB, faults."""

import json
import os
import time

import pytest
import requests
from qumulo.lib.request import RequestError
from qumulo.rest_client import RestClient


def make_files(root, names, data=b'x'):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def error_of(call):
    with pytest.raises(RequestError) as caught:
        call()
    return caught.value


# --- sessions ------------------------------------------------------------------------------------
def test_login_and_who_am_i_for_each_builtin_user(sim):
    admin, viewer, nolock = (sim.client(u, u).auth.who_am_i() for u in ('admin', 'viewer', 'nolock'))
    assert admin['name'] == 'admin' and 'PRIVILEGE_FS_FILE_LOCK_WRITE' in admin['privileges']
    assert 'PRIVILEGE_SMB_FILE_HANDLE_READ' in viewer['privileges']
    assert 'PRIVILEGE_FS_FILE_LOCK_WRITE' not in viewer['privileges']
    assert 'PRIVILEGE_SMB_FILE_HANDLE_WRITE' not in viewer['privileges']
    assert nolock['privileges'] == []


def test_wrong_password_and_missing_session_are_401(sim):
    rc = RestClient(sim.host, sim.port)
    assert error_of(lambda: rc.login('admin', 'nope')).status_code == 401
    assert error_of(lambda: rc.auth.who_am_i()).status_code == 401


def test_a_non_ascii_password_logs_in_or_is_401_never_500(sim):
    # The built-in user `spaced` has a password with spaces at both ends and non-ASCII letters.
    assert sim.client('spaced', ' Grüße 2027 ').auth.who_am_i()['name'] == 'spaced'
    rc = RestClient(sim.host, sim.port)
    for wrong in ('Grüße 2027', 'pässwörd', '🔑', 'admin'):
        assert error_of(lambda: rc.login('spaced', wrong)).status_code == 401
    assert error_of(lambda: rc.login('admin', 'ädmin')).status_code == 401
    reply = requests.post(f'https://{sim.host}:{sim.port}/v1/session/login', verify=False,
                          json={'username': 'admin', 'password': 42})
    assert reply.status_code == 400 and reply.json()['error_class'] == 'invalid_request_error'


def test_expired_sessions_answer_401_until_login_again(sim):
    rc = sim.client()
    assert sim.control('expire-sessions')['expired'] >= 1
    assert error_of(lambda: rc.auth.who_am_i()).status_code == 401
    rc.login('admin', 'admin')
    assert rc.auth.who_am_i()['name'] == 'admin'


def test_access_token_works_and_survives_session_expiry(sim):
    from qumulo.lib.auth import Credentials
    from qumulo.lib.identity_util import Identity
    rc = sim.client()
    me = rc.auth.who_am_i()
    token = rc.access_tokens.create(Identity({'auth_id': me['id']}))
    assert token.bearer_token.startswith('access-v1:')
    sim.control('expire-sessions')
    with_token = RestClient(sim.host, sim.port, credentials=Credentials(token.bearer_token))
    assert with_token.auth.who_am_i()['name'] == 'admin'


def test_missing_privilege_is_403_naming_it(sim):
    make_files(sim.root, ['f.txt'])
    error = error_of(lambda: sim.client('viewer', 'viewer').fs.modify_file_lock(path='/f.txt', legal_hold=True))
    assert error.status_code == 403 and 'PRIVILEGE_FS_FILE_LOCK_WRITE' in error.description
    error = error_of(lambda: list(sim.client('nolock', 'nolock').smb.list_file_handles()))
    assert error.status_code == 403 and 'PRIVILEGE_SMB_FILE_HANDLE_READ' in error.description


# --- files ---------------------------------------------------------------------------------------
def test_attributes_by_path_and_by_id_agree_and_ids_survive_rename(sim):
    make_files(sim.root, ['dir/a.txt'], b'hello')
    rc = sim.client()
    by_path = rc.fs.get_file_attr(path='/dir/a.txt')
    assert by_path['size'] == '5' and by_path['type'] == 'FS_FILE_TYPE_FILE'
    assert by_path['id'] == by_path['file_number'] == str(os.stat(sim.root / 'dir/a.txt').st_ino)
    os.rename(sim.root / 'dir/a.txt', sim.root / 'dir/b.txt')
    by_id = rc.fs.get_file_attr(id_=by_path['id'])
    assert by_id['path'] == '/dir/b.txt' and by_id['name'] == 'b.txt'
    assert rc.fs.get_file_attr(path='/dir')['type'] == 'FS_FILE_TYPE_DIRECTORY'
    assert rc.fs.resolve_paths([by_path['id']]) == [{'id': by_path['id'], 'path': '/dir/b.txt'}]


def test_missing_path_is_404(sim):
    error = error_of(lambda: sim.client().fs.get_file_attr(path='/no/such'))
    assert error.status_code == 404 and error.error_class == 'fs_no_such_path_error'


def test_directory_listing_pages_through_every_entry(sim):
    names = [f'f{i:03d}' for i in range(250)]
    make_files(sim.root, [f'big/{n}' for n in names])
    pages = list(sim.client().fs.read_entire_directory(path='/big', page_size=100))
    assert len(pages) == 3 and all(page['child_count'] == 250 for page in pages)
    assert [f['name'] for page in pages for f in page['files']] == names


def test_retention_can_be_extended_never_shortened_or_removed(sim):
    make_files(sim.root, ['r.txt'])
    rc = sim.client()
    lock = rc.fs.modify_file_lock(path='/r.txt', retention_period='2031-12-31T00:00:00Z')['lock']
    assert lock == {'legal_hold': False, 'retention_period': '2031-12-31T00:00:00Z'}
    for shorter in ('2030-01-01T00:00:00Z', ''):
        assert error_of(lambda: rc.fs.modify_file_lock(path='/r.txt', retention_period=shorter)).status_code == 400
    longer = rc.fs.modify_file_lock(path='/r.txt', retention_period='2032-01-01T00:00:00.5Z')['lock']
    assert longer['retention_period'] == '2032-01-01T00:00:00.500000000Z'
    attrs = rc.fs.get_file_attr(path='/r.txt', retrieve_file_lock=True)
    assert attrs['lock']['retention_period'] == '2032-01-01T00:00:00.500000000Z'


def test_legal_hold_sets_and_removes_and_only_files_lock(sim):
    make_files(sim.root, ['d/h.txt'])
    rc = sim.client()
    assert rc.fs.modify_file_lock(path='/d/h.txt', legal_hold=True)['lock']['legal_hold'] is True
    assert rc.fs.modify_file_lock(path='/d/h.txt', legal_hold=False)['lock']['legal_hold'] is False
    error = error_of(lambda: rc.fs.modify_file_lock(path='/d', legal_hold=True))
    assert error.status_code == 400 and error.error_class == 'fs_not_a_file_error'


def test_locked_file_cannot_be_written_or_deleted_through_the_api(sim):
    make_files(sim.root, ['w.txt', 'free.txt'], b'original')
    rc = sim.client()
    rc.fs.modify_file_lock(path='/w.txt', legal_hold=True)
    for call in (lambda: rc.fs.delete(path='/w.txt'), lambda: rc.fs.set_file_attr(path='/w.txt', size=0)):
        assert error_of(call).status_code == 403
    assert (sim.root / 'w.txt').read_bytes() == b'original'
    rc.fs.delete(path='/free.txt')
    assert not (sim.root / 'free.txt').exists()


def test_every_endpoint_answers_under_api_prefix(sim):
    make_files(sim.root, ['p.txt'])
    token = sim.client().credentials.bearer_token
    headers = {'Authorization': f'Bearer {token}'}
    for prefix in ('/v1', '/api/v1'):
        reply = requests.get(f'{sim.url}{prefix}/files/%2Fp.txt/info/attributes', headers=headers,
                             verify=str(sim.cert_path), timeout=10)
        assert reply.status_code == 200 and reply.json()['path'] == '/p.txt'
        assert reply.headers['ETag']


# --- notify --------------------------------------------------------------------------------------
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
    response = requests.get(f'{sim.url}/v1/files/{requests.utils.quote(path, safe="")}/notify?{query}',
                            headers={'Authorization': f'Bearer {token}'}, verify=str(sim.cert_path),
                            stream=True, timeout=15)
    assert response.headers['Content-Type'] == 'text/event-source'
    lines = EventLines(response)
    assert next(lines).startswith(': watching')
    return lines


def test_notify_reports_real_changes_with_ids_and_relative_paths(sim):
    (sim.root / 'watched/sub').mkdir(parents=True)
    stream = open_stream(sim, '/watched', True)
    (sim.root / 'watched/sub/tmp.part').write_bytes(b'data')
    os.rename(sim.root / 'watched/sub/tmp.part', sim.root / 'watched/sub/final.dat')
    events = read_events(stream, 4)
    assert [e['type'] for e in events] == ['child_file_added', 'child_data_written',
                                          'child_file_moved_from', 'child_file_moved_to']
    assert events[0]['path'] == 'sub/tmp.part' and events[3]['path'] == 'sub/final.dat'
    final_id = str(os.stat(sim.root / 'watched/sub/final.dat').st_ino)
    assert all(e['spine'][-1] == final_id for e in events)
    assert events[0]['spine'][:2] == [str(os.stat(sim.root / 'watched').st_ino),
                                      str(os.stat(sim.root / 'watched/sub').st_ino)]
    assert all(e['stream_name'] is None for e in events)


def test_locking_a_file_is_not_announced_as_a_change(sim):
    make_files(sim.root, ['quiet/a.txt'])
    stream = open_stream(sim, '/quiet', False)
    rc = sim.client()
    rc.fs.modify_file_lock(path='/quiet/a.txt', legal_hold=True)
    rc.fs.modify_file_lock(path='/quiet/a.txt', retention_period='2031-01-01T00:00:00Z')
    os.utime(sim.root / 'quiet/a.txt', (1, 1))
    events = read_events(stream, 1)
    assert [(e['type'], e['path']) for e in events] == [('child_mtime_changed', 'a.txt')]


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
    stream = open_stream(sim, '/watched', True)
    os.rename(sim.root / 'outside/batch', sim.root / 'watched/batch')
    os.rename(sim.root.parent / 'elsewhere/batch2', sim.root / 'watched/batch2')
    time.sleep(0.5)  # the emulator has read the moves and watches the new directories
    make_files(sim.root, ['watched/batch/sub/later.txt', 'watched/batch2/sub/later2.txt'])
    events = read_events(stream, 6)
    assert [(e['type'], e['path']) for e in events] == [
        ('child_dir_moved_to', 'batch'), ('child_dir_moved_to', 'batch2'),
        ('child_file_added', 'batch/sub/later.txt'), ('child_data_written', 'batch/sub/later.txt'),
        ('child_file_added', 'batch2/sub/later2.txt'), ('child_data_written', 'batch2/sub/later2.txt')]
    assert events[1]['spine'][-1] == str(os.stat(sim.root / 'watched/batch2').st_ino)
    assert events[4]['spine'][-2] == str(os.stat(sim.root / 'watched/batch2/sub').st_ino)
    held_id = str(os.stat(sim.root / 'watched/batch2/c.txt').st_ino)
    os.unlink(sim.root / 'watched/batch2/c.txt')  # a file it held is still named by its id when removed
    assert [(e['type'], e['path'], e['spine'][-1]) for e in read_events(stream, 1)] == [
        ('child_file_removed', 'batch2/c.txt', held_id)]


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
    assert error_of(lambda: sim.client('viewer', 'viewer').fs.set_notify_settings(
        recursive_mode='ENABLED')).status_code == 403
    rc.fs.set_notify_settings(recursive_mode='ENABLED')
    error = error_of(lambda: sim.client('viewer', 'viewer').fs.get_change_notify_listener(recursive=True, path='/'))
    assert error.status_code == 403 and 'DATA_ADMINISTRATOR' in error.description


def test_disabled_ignore_silently_drops_recursion(sim):
    (sim.root / 'top/deep').mkdir(parents=True)
    sim.client().fs.set_notify_settings(recursive_mode='DISABLED_IGNORE')
    stream = open_stream(sim, '/top', True)
    make_files(sim.root, ['top/deep/unseen.txt', 'top/seen.txt'])
    assert {e['path'] for e in read_events(stream, 2)} == {'seen.txt'}


# --- SMB -----------------------------------------------------------------------------------------
def open_handle(sim, path, user='alice', client='10.0.0.5', access='write', **extra):
    return sim.control('smb/open', dict(path=path, user=user, client=client, access=access, **extra))


def test_smb_handles_grants_and_sessions_join_per_file(sim):
    handle = open_handle(sim, '/share/a.xlsx', byte_ranges=[[0, 100]])
    open_handle(sim, '/share/b.docx', user='bob', client='10.0.0.6', access='read')
    rc = sim.client()
    handles = [h for page in rc.smb.list_file_handles(resolve_paths=True) for h in page['file_handles']]
    assert {h['handle_info']['path'] for h in handles} == {'/share/a.xlsx', '/share/b.docx'}
    mine = next(h for h in handles if h['handle_info']['location'] == handle['handle_info']['location'])
    assert 'MS_ACCESS_FILE_WRITE_DATA' in mine['handle_info']['access_mask']
    owner = rc.auth.find_identity(auth_id=mine['handle_info']['owner'])
    assert owner['name'] == 'alice'
    grants = rc.fs.list_locks_by_file('smb', 'share-mode', file_path='/share/a.xlsx')['grants']
    assert [g['owner_address'] for g in grants] == ['10.0.0.5']
    assert grants[0]['file_id'] == mine['file_number']
    ranges = rc.fs.list_locks_by_client('smb', 'byte-range')['grants']
    assert [(r['offset'], r['size']) for r in ranges] == [('0', '100')]
    sessions = [s for page in rc.smb.list_smb_sessions() for s in page['session_infos']]
    assert {(s['user']['name'], s['originator']) for s in sessions} == {('alice', '10.0.0.5'), ('bob', '10.0.0.6')}


def test_closing_a_handle_releases_its_grants_and_reports_per_handle(sim):
    handle = open_handle(sim, '/share/c.xlsx')
    rc = sim.client()
    assert rc.smb.close_smb_file(location=handle['handle_info']['location']) == [{'error_message': ''}]
    assert rc.fs.list_locks_by_client('smb', 'share-mode')['grants'] == []
    again = rc.smb.close_smb_file(location=handle['handle_info']['location'])
    assert 'No open file handle' in again[0]['error_message']


def test_closing_a_session_closes_its_handles(sim):
    open_handle(sim, '/share/s1.txt')
    open_handle(sim, '/share/s2.txt')
    rc = sim.client()
    sessions = next(iter(rc.smb.list_smb_sessions()))['session_infos']
    rc.smb.close_smb_sessions(sessions)
    assert next(iter(rc.smb.list_file_handles()))['file_handles'] == []


def test_handle_listing_pages(sim):
    for i in range(25):
        open_handle(sim, f'/share/p{i}.txt')
    pages = list(sim.client().smb.list_file_handles(limit=10))
    assert [len(p['file_handles']) for p in pages] == [10, 10, 5]


# --- faults --------------------------------------------------------------------------------------
def test_fail_next_fails_exactly_that_many_calls(sim):
    rc = sim.client()
    sim.control('fail-next', {'count': 2, 'status': 503})
    for _ in range(2):
        assert error_of(lambda: rc.auth.who_am_i()).status_code == 503
    assert rc.auth.who_am_i()['name'] == 'admin'


def test_latency_is_added_to_each_call(sim):
    rc = sim.client()
    sim.control('latency', {'ms': 300})
    started = time.monotonic()
    rc.auth.who_am_i()
    assert time.monotonic() - started >= 0.3
    sim.control('latency', {'ms': 0})


def test_control_surface_rejects_bad_input(sim):
    with pytest.raises(Exception) as caught:
        sim.control('smb/open', {'path': '/x'})
    assert '400' in str(caught.value)
