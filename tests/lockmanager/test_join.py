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
    assert (alice.user, alice.clients, alice.access) == ('alice', ('10.0.0.5',), 'write')
    assert alice.locks_text == 'share read/exclude-write; 2 byte-range (exclusive)'
    assert (bob.user, bob.clients, bob.locks_text) == ('bob', ('10.0.0.6',), 'share read')

    # Without sessions (no PRIVILEGE_SMB_SESSION_READ) a handle shows every client of its file.
    alice, bob = RowJoiner(grants, ranges, names).rows(handles)
    assert alice.clients == bob.clients == ('10.0.0.5', '10.0.0.6')


def test_paths_the_listing_left_out_come_from_the_resolved_ids_or_say_unknown():
    rows = RowJoiner([], [], str, paths={'7': '/fin/old.xlsx'}).rows(
        [handle('7', '501', 'L1'), handle('8', '501', 'L2')]
    )
    assert [r.path for r in rows] == ['/fin/old.xlsx', UNRESOLVED_PATH]
    assert rows[1].clients == () and rows[1].locks_text == 'none'
