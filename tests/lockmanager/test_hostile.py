"""The lock manager against a broken or hostile server (tests/hostile_proxy.py in front of the
emulator): listings without end, trickled, looping, of the wrong shape. Each ends in one line and
exit 9, in bounded time and memory. qfs_filelock's side is tests/wormlock/test_hostile.py."""

import pytest

from common.auth import connect
from common.config import load_cluster_config
from common.errors import BAD_REPLY, ToolError
from lockmanager.cli import PROG
from lockmanager.cluster import LockCluster
from tests.hostile_proxy import assert_one_line_exit_9, hostile_proxy, run_tool, run_trickled

LIST = ('qumulo_lock_manager.py', '--list')


@pytest.fixture
def proxy(sim, tmp_path):
    """The hostile proxy in front of an emulator on which two files are open over SMB, each from
    its own client."""
    (sim.root / 'drop').mkdir()
    for name, user, client in (('a.dat', 'alice', '10.0.0.5'), ('b.dat', 'bob', '10.0.0.6')):
        (sim.root / 'drop' / name).write_text(name)
        sim.control('smb/open', {'path': f'/drop/{name}', 'user': user, 'client': client, 'access': 'write'})
    with hostile_proxy(sim, tmp_path) as hostile:
        yield hostile


def test_an_endless_listing_ends_in_one_line_and_exit_9_with_memory_bounded(sim, proxy, tmp_path):
    proxy.rule('GET', r'^/v1/smb/files/', 'endless')
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *LIST), PROG, 'larger than 64 MiB')


def test_a_paging_loop_in_the_listing_ends_in_one_line_and_exit_9(sim, proxy, tmp_path):
    proxy.rule('GET', r'^/v1/smb/files/', 'loop')
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *LIST), PROG, 'paging loop')


def test_a_paging_loop_in_the_lock_grants_ends_the_listing_with_exit_9(sim, proxy, tmp_path):
    # Grant listings end only at an empty page (or one without a next link): every page here names
    # the first next link again, pages of one grant.
    proxy.rule('GET', r'/v1/files/locks/smb/share-mode', 'loop')
    client = connect(load_cluster_config(sim.write_config(tmp_path / 'tool.ini', API_PORT=proxy.port)))
    with pytest.raises(ToolError) as refused:
        LockCluster(client, page_size=1).fetch()
    assert refused.value.exit_code == BAD_REPLY and 'paging loop' in refused.value.message


@pytest.mark.slow
def test_a_trickled_listing_ends_in_one_line_and_exit_9_within_the_call_deadline(sim, proxy, tmp_path):
    result = run_trickled(sim, proxy, tmp_path, r'^/v1/smb/files/', *LIST)
    assert_one_line_exit_9(result, PROG, 'no complete reply within 60 s')
    assert result[3] < 100


@pytest.mark.parametrize(
    'reply',
    [
        {'file_handles': [{'file_number': 5}], 'paging': {'next': ''}},
        {'file_handles': None, 'paging': {'next': ''}},
        {'paging': {'next': ''}},
    ],
)
def test_a_listing_of_the_wrong_shape_exits_9(sim, proxy, tmp_path, reply):
    proxy.rule('GET', r'^/v1/smb/files/', ('reply', 200, reply, {}))
    assert_one_line_exit_9(run_tool(sim, proxy, tmp_path, *LIST), PROG, 'not shaped as expected')
