"""The lock manager's core: rows joined per file id, filtering, sorting, close plans, exports, and
the cluster calls against sim/qumulo."""

import csv
import io
import json

import pytest
from qumulo.lib.request import RequestError

from common.errors import PRIVILEGE, ToolError
from lockmanager.closing import LISTED_IN_QUESTION, ClosePlan, summary
from lockmanager.cluster import LockCluster
from sim.qumulo.samples import open_sample_handles
from lockmanager.export import table_lines, write_csv, write_json
from lockmanager.lookups import FilePaths, UserNames
from lockmanager.join import UNRESOLVED_PATH, RowJoiner
from lockmanager.model import HandleRow, Selector, access_mode, matches_text, sort_rows


def row(path='/s/a.txt', user='alice', clients=('10.0.0.5',), file_id='7', location=None, **extra):
    values = dict(location=location or f'{path}:{user}', file_id=file_id, path=path, user=user, auth_id='500',
                  clients=tuple(clients), access='read', share_modes=(), byte_range_locks=0)
    values.update(extra)
    return HandleRow(**values)


def handle(file_id, owner, location, path=None, mask=('MS_ACCESS_FILE_READ_DATA',), byte_ranges=0):
    info = {'owner': owner, 'access_mask': list(mask), 'location': location, 'num_byte_range_locks': byte_ranges}
    if path:
        info['path'] = path
    return {'file_number': file_id, 'handle_info': info}


def grant(file_id, address, *modes):
    return {'file_id': file_id, 'owner_address': address, 'mode': list(modes)}


# --- what a row says -----------------------------------------------------------------------------
@pytest.mark.parametrize('mask, expected', [
    (['MS_ACCESS_FILE_READ_DATA', 'MS_ACCESS_SYNCHRONIZE'], 'read'),
    (['MS_ACCESS_FILE_READ_DATA', 'MS_ACCESS_FILE_WRITE_DATA'], 'read+write'),
    (['MS_ACCESS_FILE_APPEND_DATA'], 'write'),
    (['MS_ACCESS_FILE_READ_DATA', 'MS_ACCESS_DELETE'], 'read+delete'),
    (['MS_ACCESS_FILE_READ_ATTRIBUTES'], 'metadata'),
    (['MS_ACCESS_GENERIC_ALL'], 'read+write+delete'),
])
def test_access_mode_in_words(mask, expected):
    assert access_mode(mask) == expected


def test_a_file_open_from_two_clients_shows_each_user_their_own_client_when_sessions_tell():
    handles = [handle('7', '501', 'L1', '/fin/Q3.xlsx', ['MS_ACCESS_FILE_WRITE_DATA'], byte_ranges=2),
               handle('7', '502', 'L2', '/fin/Q3.xlsx')]
    grants = [grant('7', '10.0.0.5', 'API_SHARE_MODE_EXCLUDE_WRITE', 'API_SHARE_MODE_READ'),
              grant('7', '10.0.0.6', 'API_SHARE_MODE_READ')]
    ranges = [grant('7', '10.0.0.5', 'API_BYTE_RANGE_EXCLUSIVE')] * 2
    sessions = [{'originator': '10.0.0.5', 'user': {'auth_id': '501'}},
                {'originator': '10.0.0.6', 'user': {'auth_id': '502'}}]
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
        [handle('7', '501', 'L1'), handle('8', '501', 'L2')])
    assert [r.path for r in rows] == ['/fin/old.xlsx', UNRESOLVED_PATH]
    assert rows[1].clients == () and rows[1].locks_text == 'none'


# --- filter, sort, select ------------------------------------------------------------------------
def test_sorting_by_file_id_and_client_is_numeric_and_ties_stay_in_path_order():
    rows = [row('/b', file_id='10', clients=('10.0.0.10',)), row('/a', file_id='9', clients=('10.0.0.9',)),
            row('/c', file_id='10', clients=('10.0.0.9',))]
    assert [r.path for r in sort_rows(rows, 'file_id')] == ['/a', '/b', '/c']
    assert [r.path for r in sort_rows(rows, 'file_id', descending=True)] == ['/b', '/c', '/a']
    assert [r.path for r in sort_rows(rows, 'client')] == ['/a', '/c', '/b']


def test_live_filter_matches_path_user_or_client_in_any_case():
    rows = [row('/Finance/Q3.xlsx', 'alice', ('10.0.0.5',)), row('/eng/spec.docx', 'Bob', ('10.0.0.6',))]
    assert [r.user for r in rows if matches_text(r, 'finance')] == ['alice']
    assert [r.user for r in rows if matches_text(r, 'bob')] == ['Bob']
    assert [r.user for r in rows if matches_text(r, '0.0.6')] == ['Bob']


def test_selector_needs_every_given_criterion():
    rows = [row('/fin/Q3.xlsx', 'alice', ('10.0.0.5',), file_id='7'),
            row('/fin/Q3.xlsx', 'bob', ('10.0.0.6',), file_id='7', auth_id='502'),
            row('/eng/spec.docx', 'alice', ('10.0.0.5',), file_id='8')]
    assert len(Selector(path='FIN/q3').pick(rows)) == 2
    assert [r.user for r in Selector(path='q3', user='BOB').pick(rows)] == ['bob']
    assert [r.user for r in Selector(user='502').pick(rows)] == ['bob']
    assert [r.path for r in Selector(file_id='8').pick(rows)] == ['/eng/spec.docx']
    assert Selector(client='10.0.0.5', path='q3').pick(rows) == [rows[0]]
    assert Selector(client='10.0.0').pick(rows) == []  # an address, not a part of one
    assert Selector(path='q3', user='bob').describe() == 'path containing q3, user bob'
    # A blank pattern picks nothing, never everything: closing all handles is --close --all.
    assert [Selector(path=blank).pick(rows) for blank in ('', '  ')] == [[], []]
    assert Selector(user=' ').pick(rows) == [] and Selector(client='').pick(rows) == []
    assert len(Selector().pick(rows)) == len(rows)


# --- closing: what is asked, what is reported ----------------------------------------------------
def test_the_confirmation_names_files_and_users_and_warns_about_unsaved_work():
    plan = ClosePlan.of([row('/fin/Q3.xlsx', 'alice'), row('/eng/spec.docx', 'bob', file_id='8')],
                        'the selected handles')
    question = plan.question()
    assert plan.title == 'Close 2 file handles?'
    assert 'held by alice, bob' in question
    assert '/fin/Q3.xlsx  (alice from 10.0.0.5, read)' in question and '/eng/spec.docx' in question
    assert 'unsaved work' in question


def test_a_long_plan_lists_the_first_handles_and_counts_the_rest():
    plan = ClosePlan.of([row(f'/f{n:02}', 'alice', file_id=str(n)) for n in range(LISTED_IN_QUESTION + 3)],
                        'x')
    assert plan.question().count('(alice from') == LISTED_IN_QUESTION
    assert '... and 3 more' in plan.question()


def test_user_and_client_plans_take_every_handle_of_them():
    rows = [row('/a', 'alice', ('10.0.0.5',)), row('/b', 'alice', ('10.0.0.7',)), row('/c', 'bob', ('10.0.0.5',))]
    assert [r.path for r in ClosePlan.for_users(rows, {'alice'}).rows] == ['/a', '/b']
    assert ClosePlan.for_users(rows, {'alice'}).scope == 'all handles of user alice'
    assert [r.path for r in ClosePlan.for_clients(rows, {'10.0.0.5'}).rows] == ['/a', '/c']


# --- exports -------------------------------------------------------------------------------------
def test_csv_json_and_table_carry_every_column():
    rows = [row('/fin/a, b.xlsx', 'alice', share_modes=('API_SHARE_MODE_READ',)), row('/eng/x', 'bob')]
    out = io.StringIO()
    write_csv(rows, out)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert parsed[0]['path'] == '/fin/a, b.xlsx' and parsed[0]['locks'] == 'share read'
    assert parsed[1]['user'] == 'bob' and parsed[1]['location'] == '/eng/x:bob'
    out = io.StringIO()
    write_json(rows, out)
    assert json.loads(out.getvalue())[0]['clients'] == ['10.0.0.5']
    heading, first, second = table_lines(rows)
    assert heading.split() == ['Path', 'File', 'ID', 'User', 'Client', 'Access', 'Locks', 'held']
    assert first.index('alice') == second.index('bob') == heading.index('User')


# --- user names ----------------------------------------------------------------------------------
def test_user_names_are_asked_once_and_fall_back_to_the_auth_id():
    asked = []

    def find(auth_id):
        asked.append(auth_id)
        if auth_id == '999':
            raise RequestError(404, 'Not Found', {'error_class': 'identity_not_found_error', 'description': 'x'})
        return {'name': 'alice'}
    names = UserNames(find)
    assert [names('501'), names('501'), names('999'), names('999')] == ['alice', 'alice', '999', '999']
    assert asked == ['501', '999']


def test_without_the_identity_privilege_names_stay_auth_ids():
    def find(auth_id):
        raise RequestError(403, 'Forbidden', {'error_class': 'privilege_denied_error',
                                              'description': 'needs PRIVILEGE_IDENTITY_READ'})
    names = UserNames(find)
    assert names('501') == '501' and not names.enabled


def test_missing_paths_are_resolved_in_batches_once_and_forgotten_when_closed():
    batches = []

    def resolve(ids):
        batches.append(list(ids))
        return [{'id': i, 'path': f'/p/{i}' if i != '5' else ''} for i in ids]
    paths = FilePaths(resolve, batch=2)
    assert paths.lookup(['1', '2', '3', '5'], ['1', '2', '3', '5']) == {'1': '/p/1', '2': '/p/2', '3': '/p/3'}
    assert batches == [['1', '2'], ['3', '5']]
    assert paths.lookup(['1', '2'], ['1', '2']) == {'1': '/p/1', '2': '/p/2'}  # cached, and 3 closed
    assert batches[2:] == []
    paths.lookup(['3'], ['3'])
    assert batches[2:] == [['3']]


# --- against the emulated cluster ----------------------------------------------------------------
def test_listing_joins_handles_grants_sessions_and_names(sim):
    open_sample_handles(sim)
    snapshot = LockCluster(sim.client()).fetch()
    assert snapshot.may_close and snapshot.user == 'admin' and snapshot.notes == ()
    by_user = {(r.path, r.user): r for r in snapshot.rows}
    assert len(snapshot.rows) == 5
    alice = by_user[('/finance/Q3.xlsx', 'alice')]
    assert alice.clients == ('10.0.0.5',) and alice.access == 'read+write'
    assert alice.locks_text == 'share read/write/exclude-write; 1 byte-range (exclusive)'
    assert by_user[('/finance/Q3.xlsx', 'bob')].clients == ('10.0.0.6',)
    assert by_user[('/design/cover.psd', 'carol')].byte_range_locks == 2
    assert alice.file_id == by_user[('/finance/Q3.xlsx', 'bob')].file_id


def test_names_come_from_sessions_and_identity_find_answers_the_rest(sim):
    open_sample_handles(sim)
    rc = sim.client()
    cluster = LockCluster(rc)
    rows = cluster.fetch().rows
    assert sorted({r.user for r in rows}) == ['alice', 'bob', 'carol', 'dave']
    alice = next(r for r in rows if r.user == 'alice')
    asked = UserNames(lambda **query: rc.auth.find_identity(**query))  # what a listing without sessions uses
    assert asked(alice.auth_id) == 'alice' and asked('123456789') == '123456789'


def test_listing_follows_every_page(sim):
    open_sample_handles(sim)
    rows = LockCluster(sim.client(), page_size=2).fetch().rows
    assert len(rows) == 5 and len({r.location for r in rows}) == 5
    assert all(r.clients and r.share_modes for r in rows)


def test_closing_closes_exactly_the_chosen_handles_not_the_whole_file(sim):
    open_sample_handles(sim)
    cluster = LockCluster(sim.client())
    rows = cluster.fetch().rows
    alice = Selector(path='Q3', user='alice').pick(rows)
    outcomes = cluster.close(alice)
    assert [o.closed for o in outcomes] == [True]
    left = {(r.path, r.user) for r in cluster.fetch().rows}
    assert ('/finance/Q3.xlsx', 'bob') in left and ('/finance/Q3.xlsx', 'alice') not in left
    assert len(left) == 4


def test_a_vanished_handle_is_reported_by_name_and_the_rest_still_close(sim):
    open_sample_handles(sim)
    cluster = LockCluster(sim.client())
    rows = sort_rows(cluster.fetch().rows, 'path')
    gone = rows[1]
    sim.client().smb.close_smb_file(location=gone.location)  # someone else was faster
    outcomes = cluster.close(rows)
    assert [o.closed for o in outcomes] == [True, False, True, True, True]
    assert outcomes[1].describe().startswith(f'not closed: {gone.path} ({gone.who}, file id {gone.file_id}): ')
    assert 'may have been closed already' in outcomes[1].problem
    assert summary(outcomes) == 'closed 4 of 5 handles; 1 failed'
    assert cluster.fetch().rows == ()


def test_a_viewer_lists_read_only_and_may_not_close(sim):
    open_sample_handles(sim)
    cluster = LockCluster(sim.client('viewer', 'viewer'))
    snapshot = cluster.fetch()
    assert not snapshot.may_close and len(snapshot.rows) == 5
    with pytest.raises(ToolError) as refused:
        cluster.close(snapshot.rows[:1])
    assert refused.value.exit_code == PRIVILEGE
    assert 'PRIVILEGE_SMB_FILE_HANDLE_WRITE' in refused.value.message
    assert len(LockCluster(sim.client()).fetch().rows) == 5


def test_a_user_without_smb_privileges_may_not_list(sim):
    with pytest.raises(ToolError) as refused:
        LockCluster(sim.client('nolock', 'nolock')).fetch()
    assert refused.value.exit_code == PRIVILEGE
    assert 'PRIVILEGE_SMB_FILE_HANDLE_READ' in refused.value.message
