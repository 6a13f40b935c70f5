"""Who may run what, from the peer credentials the kernel reports; and how the answers look."""

import datetime as dt
import os
import socket

import pytest

from common.config import ConfigError
from pytarchive import config as configuration
from pytarchive.access import Access, Peer, peer_of, resolve_group
from pytarchive.queue import Task
from pytarchive.render import deleteable_table, queue_table, summary_text
from pytarchive.units import age, human_bytes

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
            'deleteable, queue, summary, task')
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


def _task(**changes):
    values = dict(id=7, kind='check', args={'barcode': 'TPN001L9'}, state='running', error=None, result=None,
                  bytes_done=0, bytes_total=None, files_done=0, files_total=None, attempts=1,
                  created='2025-01-01T10:00:00+00:00', started=None, finished=None)
    values.update(changes)
    return Task(**values)


def test_queue_table_shows_id_kind_arguments_state_progress_age_and_errors():
    now = dt.datetime(2025, 1, 1, 12, 30, tzinfo=dt.timezone.utc)
    text = queue_table([
        _task(bytes_done=1_500_000_000, bytes_total=18_000_000_000_000, files_done=12, files_total=4000),
        _task(id=8, kind='scan', args={}, state='failed', error='mtx: Drive 0 Full', created='2025-01-01T12:29:55+00:00'),
        _task(id=9, kind='format', state='done', result='TPN001L9 formatted'),
    ], now=now)
    assert text.splitlines() == [
        'ID  KIND    ARGUMENTS  STATE    PROGRESS                             AGE',
        '7   check   TPN001L9   running  1.5 GB of 18.0 TB, 12 of 4000 files  2h',
        '8   scan    -          failed   -                                    5s',
        '    error: mtx: Drive 0 Full',
        '9   format  TPN001L9   done     -                                    2h',
        '    TPN001L9 formatted',
    ]
    assert queue_table([]) == 'the queue is empty'


def test_summary_lists_tapes_the_drive_and_counts():
    text = summary_text(
        [{'barcode': 'TPN001L9', 'slot': 1, 'state': 'formatted', 'capacity': 200_000_000, 'used': 50_000_000,
          'free': 150_000_000, 'folders': 2, 'seen': 'x', 'checked': '2025-01-01T10:00:00+00:00'},
         {'barcode': 'TPN002L9', 'slot': 2, 'state': 'formatted', 'capacity': 200_000_000, 'used': 0,
          'free': 200_000_000, 'folders': 0, 'seen': 'x', 'checked': '2025-01-01T10:00:00+00:00'},
         {'barcode': 'TPN009L9', 'slot': None, 'state': 'unknown', 'capacity': None, 'used': None,
          'free': None, 'folders': 0, 'seen': 'x', 'checked': None}],
        {'index': 0, 'serial': '10WT000000', 'tape': 'TPN002L9', 'mounted': 'read-only'},
        {'done': 3, 'running': 1}, {'archived': 2})
    assert text.splitlines() == [
        'BARCODE   SLOT            STATE      CAPACITY  USED     FREE      FOLDERS  CHECKED',
        'TPN001L9  1               formatted  200.0 MB  50.0 MB  150.0 MB  2        2025-01-01T10:00:00+00:00',
        'TPN002L9  drive 0         formatted  200.0 MB  0 B      200.0 MB  0        2025-01-01T10:00:00+00:00',
        'TPN009L9  not in library  unknown    -         -        -         0        -',
        '',
        'drive: 0 (serial 10WT000000): TPN002L9, mounted read-only',
        'queue: 3 done, 1 running',
        'folders: 2 archived',
    ]
    empty = summary_text([], {'index': 0, 'serial': '10WT000000', 'tape': None, 'mounted': None}, {}, {})
    assert empty.splitlines()[0] == 'no tapes known yet: run `pytarchive scan`'
    assert 'drive: 0 (serial 10WT000000): empty' in empty


def test_deleteable_table_says_what_is_safe_to_delete():
    rows = [{'path': '/data/projects/Q3', 'tape': 'TPN001L9', 'source_bytes': 5_000_000, 'file_count': 12,
             'verified': '2026-11-20T10:00:00+00:00', 'packed': 0},
            {'path': '/data/many files', 'tape': 'TPN002L9', 'source_bytes': 1_000_000, 'file_count': 600_000,
             'verified': '2026-11-21T10:00:00+00:00', 'packed': 1}]
    assert deleteable_table(rows).splitlines() == [
        'FOLDER             TAPE      SIZE    FILES   VERIFIED',
        '/data/projects/Q3  TPN001L9  5.0 MB  12      2026-11-20',
        '/data/many files   TPN002L9  1.0 MB  600000  2026-11-21  packed',
        '',
        '2 folders, 6.0 MB: archived and verified, safe to delete by hand (pytarchive never deletes originals)',
    ]
    assert deleteable_table([]) == 'nothing is archived and verified yet'


def test_units():
    assert [human_bytes(n) for n in (None, 0, 999, 1000, 18_000_000_000_000)] == ['-', '0 B', '999 B', '1.0 kB', '18.0 TB']
    now = dt.datetime(2025, 1, 3, tzinfo=dt.timezone.utc)
    assert [age(t, now) for t in ('2025-01-03T00:00:00+00:00', '2025-01-02T23:59:00+00:00',
                                  '2025-01-02T21:00:00+00:00', '2025-01-01T00:00:00+00:00')] == ['0s', '1m', '3h', '2d']
