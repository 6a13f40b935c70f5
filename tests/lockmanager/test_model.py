"""lockmanager.model: what a row says (access in words), sorting, the live filter and the
--list/--close selector."""

import pytest

from lockmanager.model import (
    COLUMN_BY_KEY,
    COLUMNS,
    Selector,
    SessionRow,
    access_mode,
    duration_text,
    matches_text,
    natural_key,
    sort_rows,
    sort_sessions,
)
from tests.lockmanager.conftest import row


@pytest.mark.parametrize(
    'mask, expected',
    [
        (['MS_ACCESS_FILE_READ_DATA', 'MS_ACCESS_SYNCHRONIZE'], 'read'),
        (['MS_ACCESS_FILE_READ_DATA', 'MS_ACCESS_FILE_WRITE_DATA'], 'read+write'),
        (['MS_ACCESS_FILE_APPEND_DATA'], 'write'),
        (['MS_ACCESS_FILE_READ_DATA', 'MS_ACCESS_DELETE'], 'read+delete'),
        (['MS_ACCESS_FILE_READ_ATTRIBUTES'], 'metadata'),
        (['MS_ACCESS_GENERIC_ALL'], 'read+write+delete'),
        (['MS_ACCESS_FILE_ALL'], 'read+write+delete'),
        (['MS_ACCESS_MAXIMUM_ALLOWED'], 'read+write+delete'),
        (['MS_ACCESS_GENERIC_READ', 'MS_ACCESS_SYNCHRONIZE'], 'read'),
        (['MS_ACCESS_GENERIC_WRITE'], 'write'),
        (['MS_ACCESS_GENERIC_EXECUTE'], 'read'),
        (['MS_ACCESS_DELETE', 'MS_ACCESS_FILE_READ_ATTRIBUTES'], 'delete'),
        (['MS_ACCESS_FILE_LIST_DIRECTORY', 'MS_ACCESS_FILE_ADD_FILE'], 'read+write'),
        (['MS_ACCESS_FILE_ADD_SUBDIRECTORY', 'MS_ACCESS_FILE_DELETE_CHILD'], 'write+delete'),
        (['MS_ACCESS_WRITE_DAC', 'MS_ACCESS_WRITE_OWNER', 'MS_ACCESS_READ_CONTROL'], 'metadata'),
        ([], 'metadata'),
    ],
)
def test_access_mode_in_words(mask, expected):
    assert access_mode(mask) == expected


def test_sorting_by_file_id_and_client_is_numeric_and_ties_stay_in_path_order():
    rows = [
        row('/b', file_id='10', client='10.0.0.10'),
        row('/a', file_id='9', client='10.0.0.9'),
        row('/c', file_id='10', client='10.0.0.9'),
    ]
    assert [r.path for r in sort_rows(rows, 'file_id')] == ['/a', '/b', '/c']
    assert [r.path for r in sort_rows(rows, 'file_id', descending=True)] == ['/b', '/c', '/a']
    assert [r.path for r in sort_rows(rows, 'client')] == ['/a', '/c', '/b']


def test_live_filter_matches_path_user_or_client_in_any_case():
    rows = [row('/Finance/Q3.xlsx', 'alice', '10.0.0.5'), row('/eng/spec.docx', 'Bob', '10.0.0.6', host='WS-Bob')]
    assert [r.user for r in rows if matches_text(r, 'finance')] == ['alice']
    assert [r.user for r in rows if matches_text(r, 'bob')] == ['Bob']
    assert [r.user for r in rows if matches_text(r, '0.0.6')] == ['Bob']
    assert [r.user for r in rows if matches_text(r, 'ws-bob')] == ['Bob']


def test_selector_needs_every_given_criterion():
    rows = [
        row('/fin/Q3.xlsx', 'alice', '10.0.0.5', file_id='7'),
        row('/fin/Q3.xlsx', 'bob', '10.0.0.6', file_id='7', auth_id='502', host='ws-bob'),
        row('/eng/spec.docx', 'alice', '10.0.0.5', file_id='8'),
    ]
    assert len(Selector(path='FIN/q3').pick(rows)) == 2
    assert [r.user for r in Selector(path='q3', user='BOB').pick(rows)] == ['bob']
    assert [r.user for r in Selector(user='502').pick(rows)] == ['bob']
    assert [r.path for r in Selector(file_id='8').pick(rows)] == ['/eng/spec.docx']
    assert Selector(client='10.0.0.5', path='q3').pick(rows) == [rows[0]]
    assert Selector(client='10.0.0').pick(rows) == []  # an address, not a part of one
    assert Selector(client='WS-BOB').pick(rows) == [rows[1]]  # or the host name, any case
    assert Selector(path='q3', user='bob').describe() == 'path containing q3, user bob'
    # A blank pattern picks nothing, never everything: closing all handles is --close --all.
    assert [Selector(path=blank).pick(rows) for blank in ('', '  ')] == [[], []]
    assert Selector(user=' ').pick(rows) == [] and Selector(client='').pick(rows) == []
    assert len(Selector().pick(rows)) == len(rows)


def test_paths_and_names_sort_as_people_count():
    rows = [row(f'/s/file{n}', user=f'user{n}') for n in (1000, 200, 30)]
    assert [r.path for r in sort_rows(rows, 'path')] == ['/s/file30', '/s/file200', '/s/file1000']
    assert [r.user for r in sort_rows(rows, 'user', descending=True)] == ['user1000', 'user200', 'user30']
    assert natural_key('a9c') < natural_key('A10b')  # numbers as numbers, letters in any case


@pytest.mark.parametrize(
    'seconds, text',
    [(None, ''), (5, '5 s'), (125, '2 min'), (3 * 3600 + 300, '3 h 05 min'), (2 * 86400 + 7200, '2 d 2 h')],
)
def test_idle_times_read_as_durations(seconds, text):
    assert duration_text(seconds) == text
    assert row(idle_s=seconds).cells[COLUMNS.index(COLUMN_BY_KEY['idle'])] == text


def test_unknown_open_times_sort_last_either_way_up():
    rows = [row('/a', opened=None), row('/b', opened=200.0), row('/c', opened=100.0)]
    assert [r.path for r in sort_rows(rows, 'opened')] == ['/c', '/b', '/a']


def test_sessions_are_picked_by_user_and_client_or_host():
    sessions = [
        SessionRow('s1', 'alice', '500', '10.0.0.5', 'ws-alice', ('Files',), 2, 100.0, 5.0, False, True),
        SessionRow('s2', 'bob', '501', '10.0.0.6', '', ('Finance',), 0, None, None, True, False),
    ]
    assert Selector(user='ALICE').pick_sessions(sessions) == [sessions[0]]
    assert Selector(client='ws-alice').pick_sessions(sessions) == [sessions[0]]
    assert Selector(client='10.0.0.6', user='bob').pick_sessions(sessions) == [sessions[1]]
    assert Selector(user=' ').pick_sessions(sessions) == []
    assert [s.location for s in sort_sessions(sessions, 'open_handles')] == ['s2', 's1']
    assert sessions[1].cells[-2:] == ('yes', 'no') and sessions[0].label.startswith('the session of alice from')


def test_a_row_is_slotted_and_keeps_what_it_works_out():
    # 20,000 rows live as long as the window shows them: no per-row dict, the cells built once
    # and equal to each column's text.
    r = row(opened=1_700_000_000.0, idle_s=75.0, share_modes=('API_SHARE_MODE_READ',), byte_range_locks=1)
    assert not hasattr(r, '__dict__')
    assert r.cells == tuple(column.text(r) for column in COLUMNS) and r.cells is r.cells
    assert r.path_key is r.path_key and r.haystack is r.haystack
    with pytest.raises(AttributeError):
        r.path = '/elsewhere'  # still frozen
    assert r == row(opened=1_700_000_000.0, idle_s=75.0, share_modes=('API_SHARE_MODE_READ',), byte_range_locks=1)


def test_natural_order_puts_text_before_numbers_and_shorter_first():
    names = ['b', 'a10', 'a9', 'A9x', '9', '10', '', 'a', 'a 9']
    assert sorted(names, key=natural_key) == ['', 'a', 'a9', 'A9x', 'a10', 'a 9', 'b', '9', '10']
