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
    assert alice.client == '10.0.0.5' and alice.access == 'read+write'
    assert alice.locks_text == 'share read/write/exclude-write; 1 byte-range (exclusive)'
    assert by_user[('/finance/Q3.xlsx', 'bob')].client == '10.0.0.6'
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
    assert all(r.client and r.share_modes for r in rows)


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


# --- listings never cut short; paths that vanish; access beyond read and write --------------------
def test_short_pages_before_the_end_cut_no_listing_short(sim):
    open_sample_handles(sim)
    sim.control('paging', {'short_pages': True})  # every page half the limit: 2 of 4
    rows = LockCluster(sim.client(), page_size=4).fetch().rows
    assert len(rows) == 5 and len({r.location for r in rows}) == 5
    # every grant was read: each row has its client and its share modes
    assert all(r.client and r.share_modes for r in rows)
    assert sorted(r.byte_range_locks for r in rows) == [0, 0, 0, 1, 2]
    assert {r.user for r in rows} == {'alice', 'bob', 'carol', 'dave'}


class ClosingBetweenPages(LockCluster):
    """Another admin closes handles while this listing is between its first and second page."""

    def __init__(self, client, doomed, **kwargs):
        super().__init__(client, **kwargs)
        self.doomed = doomed

    def _handles(self):
        for n, handle in enumerate(super()._handles(), 1):
            yield handle
            if n == self.page_size:
                other = self.client.clone()
                for location in self.doomed:
                    other.smb.close_smb_file(location=location)


def test_a_handle_closed_between_pages_neither_ends_the_listing_nor_hides_others(sim):
    opened = sim.control(
        'smb/open',
        [{'path': f'/share/f{n}.txt', 'user': 'alice', 'client': '10.0.0.5', 'access': 'write'} for n in range(7)],
    )
    locations = [h['handle_info']['location'] for h in opened]
    # the last handle of the first page (the one the page link points after) and one further on
    doomed = [locations[2], locations[4]]
    rows = ClosingBetweenPages(sim.client(), doomed, page_size=3).fetch().rows
    listed = {r.location for r in rows}
    assert listed == set(locations) - {locations[4]}  # the first page still showed locations[2]
    assert {r.path for r in rows if r.location != locations[2]} == {f'/share/f{n}.txt' for n in (0, 1, 3, 5, 6)}


def test_a_file_gone_while_open_leaves_its_path_unknown_and_the_refresh_whole(sim):
    open_sample_handles(sim)
    (sim.root / 'design' / 'cover.psd').unlink()  # removed on the cluster while still open
    rows = LockCluster(sim.client()).fetch().rows
    assert len(rows) == 5
    paths = sorted(r.path for r in rows)
    assert paths.count('(path unknown)') == 2  # carol's and dave's handles on the removed file
    assert '/finance/Q3.xlsx' in paths and '/finance/budget-2027.xlsx' in paths


def test_access_beyond_read_and_write_and_deny_modes_are_shown(sim):
    spec = {'path': '/share/report.docx', 'client': '10.0.0.5'}
    sim.control(
        'smb/open',
        [
            dict(spec, user='alice', access_mask=['MS_ACCESS_DELETE', 'MS_ACCESS_FILE_READ_ATTRIBUTES']),
            dict(spec, user='bob', client='10.0.0.6', access_mask=['MS_ACCESS_GENERIC_ALL']),
            dict(
                spec,
                user='carol',
                client='10.0.0.7',
                access_mask=['MS_ACCESS_FILE_ALL'],
                share_mode=['API_SHARE_MODE_READ', 'API_SHARE_MODE_EXCLUDE_READ', 'API_SHARE_MODE_EXCLUDE_DELETE'],
            ),
            dict(spec, user='dave', client='10.0.0.8', access_mask=['MS_ACCESS_GENERIC_READ']),
            dict(spec, user='erin', client='10.0.0.9', access_mask=['MS_ACCESS_WRITE_DAC']),
        ],
    )
    rows = {r.user: r for r in LockCluster(sim.client()).fetch().rows}
    assert {user: r.access for user, r in rows.items()} == {
        'alice': 'delete',
        'bob': 'read+write+delete',
        'carol': 'read+write+delete',
        'dave': 'read',
        'erin': 'metadata',
    }
    assert rows['alice'].locks_text == 'share delete'
    assert rows['carol'].locks_text == 'share read/exclude-read/exclude-delete'


def test_rows_come_in_listing_order_with_pathless_handles_in_place_and_the_interpreter_as_it_was(sim):
    # The handles are joined page by page while the next page is read; a handle whose path the
    # listing left empty is joined once the paths are asked, in its place.
    import sys

    open_sample_handles(sim)  # the last two on /design/cover.psd
    sim.control('smb/open', {'path': '/finance/later.xlsx', 'user': 'bob', 'client': '10.0.0.6', 'access': 'read'})
    (sim.root / 'design' / 'cover.psd').unlink()
    rc = sim.client()
    listed = [h['handle_info']['location'] for page in rc.smb.list_file_handles(limit=10) for h in page['file_handles']]
    interval = sys.getswitchinterval()
    rows = LockCluster(rc, page_size=2).fetch().rows
    assert [r.location for r in rows] == listed
    assert [r.path == '(path unknown)' for r in rows] == [False] * 3 + [True] * 2 + [False]
    assert sys.getswitchinterval() == interval


def test_cycles_left_while_the_collector_paused_are_collected_within_a_few_listings():
    # The SDK leaves a cycle per call; after a listing the survivors skip the young collections,
    # so a full collection every FULL_COLLECTION_EVERY listings must still free such cycles.
    import gc
    import weakref

    from lockmanager.cluster import FULL_COLLECTION_EVERY, without_cyclic_gc

    class Node:
        pass

    refs = []
    assert gc.isenabled()
    for _ in range(2 * FULL_COLLECTION_EVERY):
        with without_cyclic_gc():
            node = Node()
            node.me = node
            refs.append(weakref.ref(node))
            del node
        assert gc.isenabled()
    assert [ref() for ref in refs[:FULL_COLLECTION_EVERY]] == [None] * FULL_COLLECTION_EVERY
