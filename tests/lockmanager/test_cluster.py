"""lockmanager.cluster: listing and closing against the emulated cluster (sim/qumulo)."""

import pytest

from common.errors import PRIVILEGE, ToolError
from lockmanager.closing import summary
from lockmanager.cluster import LockCluster
from lockmanager.lookups import UserNames
from lockmanager.model import Selector, sort_rows
from sim.qumulo.samples import open_sample_handles


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
