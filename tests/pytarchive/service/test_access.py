"""Who may run what, from the peer credentials the kernel reports."""

import os
import socket

import pytest

from common.config import ConfigError
from pytarchive import config as configuration
from pytarchive.service.access import Access, Peer, peer_of, resolve_group

ROOT = Peer(pid=10, uid=0, gid=0, groups=frozenset({0}))
NOBODY = Peer(pid=11, uid=65534, gid=65534, groups=frozenset({65534}))
TAPE_MEMBER = Peer(pid=12, uid=1000, gid=1000, groups=frozenset({1000, 26}))


def test_peer_credentials_come_from_the_socket():
    left, right = socket.socketpair()
    with left, right:
        peer = peer_of(right)
    assert (peer.pid, peer.uid, peer.gid) == (os.getpid(), os.getuid(), os.getgid())
    assert set(os.getgroups()) | {os.getgid()} <= peer.groups


@pytest.mark.parametrize('command', ['queue', 'summary', 'format', 'requeue', 'anything'])
def test_root_may_run_everything(command):
    assert Access(None).refusal(ROOT, command) is None


def test_without_a_group_everyone_else_is_refused_by_uid():
    assert Access(None).refusal(NOBODY, 'queue') == 'permission denied for UID 65534: only root may use pytarchive'


def test_the_read_only_group_may_read_but_not_change():
    access = Access(26, 'tape')
    assert access.refusal(TAPE_MEMBER, 'queue') is None
    assert access.refusal(TAPE_MEMBER, 'summary') is None
    assert access.refusal(TAPE_MEMBER, 'deleteable') is None
    assert access.refusal(TAPE_MEMBER, 'task') is None  # what `--wait` polls
    for command in ('format', 'archive', 'restore', 'explore', 'prepare', 'inventory'):
        assert access.refusal(TAPE_MEMBER, command) == (
            f"permission denied for UID 1000: only root may run '{command}'; members of group tape may run "
            'deleteable, find, history, ls, queue, summary, task'
        )
    assert access.refusal(NOBODY, 'queue').startswith('permission denied for UID 65534: ')


def test_group_names_and_numbers_resolve_and_an_unknown_name_is_a_config_error(tmp_path):
    def config_with(group):
        path = tmp_path / 'p.conf'
        path.write_text(f'[Device]\nlibrary = /dev/sch0\ndrive_serial = X\n[Service]\nread_only_group = {group}\n')
        return configuration.load(str(path))

    assert resolve_group(config_with('tape')) == 26
    assert resolve_group(config_with('4242')) == 4242
    with pytest.raises(ConfigError, match=r"\[Service\] read_only_group: no group named 'no-such-group'"):
        resolve_group(config_with('no-such-group'))
