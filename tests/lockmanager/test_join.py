"""lockmanager.join: rows joined per file id from the handle, grant and session listings."""

from lockmanager.join import UNRESOLVED_PATH, RowJoiner
from tests.lockmanager.conftest import grant, handle


def test_a_file_open_from_two_clients_shows_each_user_their_own_client_when_sessions_tell():
    handles = [
        handle('7', '501', 'L1', '/fin/Q3.xlsx', ['MS_ACCESS_FILE_WRITE_DATA'], byte_ranges=2),
        handle('7', '502', 'L2', '/fin/Q3.xlsx'),
    ]
    grants = [
        grant('7', '10.0.0.5', 'API_SHARE_MODE_EXCLUDE_WRITE', 'API_SHARE_MODE_READ'),
        grant('7', '10.0.0.6', 'API_SHARE_MODE_READ'),
    ]
    ranges = [grant('7', '10.0.0.5', 'API_BYTE_RANGE_EXCLUSIVE')] * 2
    sessions = [
        {'originator': '10.0.0.5', 'user': {'auth_id': '501'}},
        {'originator': '10.0.0.6', 'user': {'auth_id': '502'}},
    ]
    names = {'501': 'alice', '502': 'bob'}.get
    alice, bob = RowJoiner(grants, ranges, names, sessions).rows(handles)
    assert (alice.user, alice.client, alice.access) == ('alice', '10.0.0.5', 'write')
    assert alice.locks_text == 'share read/exclude-write; 2 byte-range (exclusive)'
    assert (bob.user, bob.client, bob.locks_text) == ('bob', '10.0.0.6', 'share read')

    # Without sessions (no PRIVILEGE_SMB_SESSION_READ) a handle has a row for every client of its
    # file, each with that client's grants.
    rows = RowJoiner(grants, ranges, names).rows(handles)
    assert [(r.user, r.client, r.locks_text) for r in rows] == [
        ('alice', '10.0.0.5', 'share read/exclude-write; 2 byte-range (exclusive)'),
        ('alice', '10.0.0.6', 'share read; 2 byte-range'),
        ('bob', '10.0.0.5', 'share read/exclude-write'),
        ('bob', '10.0.0.6', 'share read'),
    ]
    assert len({r.key for r in rows}) == 4 and len({r.location for r in rows}) == 2


def test_one_user_on_two_clients_reads_right_each_handle_with_its_own_clients_grants():
    """A read handle from one client and a write handle from another, same user, same file: what
    each client's opens do (its share-mode grant) ties each handle to its client."""
    handles = [
        handle('7', '501', 'R', '/fin/Q3.xlsx', ['MS_ACCESS_FILE_READ_DATA']),
        handle('7', '501', 'W', '/fin/Q3.xlsx', ['MS_ACCESS_FILE_READ_DATA', 'MS_ACCESS_FILE_WRITE_DATA']),
    ]
    grants = [
        grant('7', '10.0.0.5', 'API_SHARE_MODE_READ'),
        grant('7', '10.0.0.6', 'API_SHARE_MODE_READ', 'API_SHARE_MODE_WRITE', 'API_SHARE_MODE_EXCLUDE_WRITE'),
    ]
    sessions = [
        {'originator': '10.0.0.5', 'user': {'auth_id': '501'}, 'share_names': ['Finance'],
         'time_open': {'nanoseconds': str(3600 * 10**9)}, 'time_idle': {'nanoseconds': str(90 * 10**9)}},
        {'originator': '10.0.0.6', 'user': {'auth_id': '501'}, 'share_names': ['Files']},
    ]  # fmt: skip
    shares = [{'share_name': 'Files', 'fs_path': '/'}, {'share_name': 'Finance', 'fs_path': '/fin'}]
    joiner = RowJoiner(
        grants, [], {'501': 'alice'}.get, sessions, shares=shares, hosts={'10.0.0.5': 'ws-alice'}, listed_at=10_000.0
    )
    read, write = joiner.rows(handles)
    assert (read.client, read.host, read.access, read.locks_text) == ('10.0.0.5', 'ws-alice', 'read', 'share read')
    assert (write.client, write.host, write.access) == ('10.0.0.6', '', 'read+write')
    assert write.locks_text == 'share read/write/exclude-write'
    assert (read.share, write.share) == ('Finance', 'Files')  # each through its own session's share
    assert (read.opened, read.idle_s) == (10_000.0 - 3600, 90.0) and read.cells[-2] == '1 min'
    assert (write.opened, write.idle_s) == (None, None)
    assert read.who == 'alice from 10.0.0.5 (ws-alice)'


def test_paths_the_listing_left_out_come_from_the_resolved_ids_or_say_unknown():
    rows = RowJoiner([], [], str, paths={'7': '/fin/old.xlsx'}).rows(
        [handle('7', '501', 'L1'), handle('8', '501', 'L2')]
    )
    assert [r.path for r in rows] == ['/fin/old.xlsx', UNRESOLVED_PATH]
    assert rows[1].client == '' and rows[1].locks_text == 'none'


def test_the_rows_of_one_file_share_its_path_and_sort_key():
    # 20,000 rows: each text a row shows is one object per file and per user, not one per row.
    def fresh(text):  # an equal text, but a new object, as each handle of a decoded listing has
        return ''.join(list(text))

    handles = [handle(fresh('70'), fresh('501'), f'L{n}', fresh('/fin/Q3.xlsx')) for n in range(3)]
    handles.append(handle('80', '501', 'L9', '/fin/x.doc'))
    assert handles[0]['handle_info']['path'] is not handles[1]['handle_info']['path']
    grants = [grant('70', '10.0.0.5', 'API_SHARE_MODE_READ'), grant('80', '10.0.0.5', 'API_SHARE_MODE_READ')]
    rows = RowJoiner(grants, [], lambda auth_id: 'alice').rows(handles)
    assert [r.location for r in rows] == ['L0', 'L1', 'L2', 'L9']
    first, second = rows[0], rows[1]
    assert first.path is second.path and first.path_key is second.path_key and first.auth_id is second.auth_id
    assert first.file_id is second.file_id and rows[3].path_key != first.path_key
    assert {r.client for r in rows} == {'10.0.0.5'} and all(r.share_modes == ('API_SHARE_MODE_READ',) for r in rows)
