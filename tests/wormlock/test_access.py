"""qfs_filelock with a least-privilege account on a cluster that checks file rights as well as
privileges: the emulator's `locker` holds PRIVILEGE_FS_FILE_LOCK_WRITE and no role, so it may lock
only files whose WRITE_ACL it has (under a plain mode: files it owns), read only locks whose
READ_ACL it has, and watch only directories it may READ, never recursively. Files the tests write
into the backing directory belong to root, as files written over SMB by someone else would.

Each test runs the real qfs_filelock.py (or the watcher's own scan) against the emulator and
checks what a user sees: the audit log, the log, the locks read back, the exit status."""

import logging
import os

import pytest

from common.auth import connect
from common.config import load_cluster_config
from tests.wormlock.rig import Watcher, assert_all_locked, locks_on_cluster, run_tool, wait_for
from wormlock.watcher import WatchOptions
from wormlock.watcher import Watcher as WatchLoop

GRANT_LOCKING = [{'type': 'ALLOWED', 'trustee': 'locker', 'rights': ['READ', 'READ_ATTR', 'READ_ACL', 'WRITE_ACL']}]
UNLOCKED = {'legal_hold': False, 'retention_period': None}


def failed_records(watcher):
    return {r['path']: r for r in watcher.records() if r['result'] == 'failed'}


def test_files_the_account_may_not_lock_are_recorded_failed_and_the_watch_goes_on(sim, tmp_path, drop):
    (drop / 'before.txt').write_text("root's, there before the start: found by the catch-up scan")
    watcher = Watcher(sim, tmp_path, '/drop', user='locker', recursive=False)
    written = [f'/drop/new-{i}.txt' for i in range(3)]
    for path in written:
        (sim.root / path[1:]).write_text("root's, written while watching")
    every = ['/drop/before.txt', *written]
    assert wait_for(lambda: set(every) <= set(failed_records(watcher)), 20), watcher.records()
    for path, record in failed_records(watcher).items():
        # The cluster's own reason, naming the right the account lacks and the file.
        assert record['error'] == f'403 fs_access_denied_error: Access denied: locker lacks WRITE_ACL on {path}'
        assert record['file_id'] == sim.client().fs.get_file_attr(path=path)['id']
    log = watcher.log_text()
    for path in every:
        assert (
            f'ERROR - failed to lock {path}: 403 fs_access_denied_error: Access denied: locker lacks WRITE_ACL' in log
        )
    assert 'unexpected' not in log and 'Traceback' not in log and 'will retry' not in log
    assert watcher.proc.poll() is None, 'the watcher ended'
    # Still watching: a file written now is tried (and refused) as well.
    (drop / 'later.txt').write_text('later')
    assert wait_for(lambda: '/drop/later.txt' in failed_records(watcher), 20)
    watcher.stop()
    assert not [r for r in watcher.records() if r['result'] == 'locked']
    assert all(lock == UNLOCKED for lock in locks_on_cluster(sim, [*every, '/drop/later.txt']).values())
    assert 'failed' in watcher.log_text().splitlines()[-1]  # `stopped: 5 failed` (or more: events and scan)


def test_files_the_account_owns_or_is_granted_are_locked_beside_those_it_may_not_lock(sim, tmp_path, drop):
    staging = sim.root / 'staging'
    staging.mkdir()
    for name in ('mine-before.txt', 'granted-before.txt', 'mine-moved.txt', 'granted-moved.txt'):
        (staging / name).write_text(name)
    for name in ('mine-before.txt', 'mine-moved.txt'):
        sim.control('fs/permissions', {'path': f'/staging/{name}', 'owner': 'locker'})
    for name in ('granted-before.txt', 'granted-moved.txt'):
        sim.control('fs/permissions', {'path': f'/staging/{name}', 'acl': GRANT_LOCKING})
    for name in ('mine-before.txt', 'granted-before.txt'):
        os.rename(staging / name, drop / name)
    (drop / 'roots.txt').write_text("root's")
    watcher = Watcher(sim, tmp_path, '/drop', user='locker', recursive=False)
    assert_all_locked(sim, watcher, ['/drop/mine-before.txt', '/drop/granted-before.txt'], timeout=20)
    # Moved in while watching, the way finished files are delivered.
    for name in ('mine-moved.txt', 'granted-moved.txt'):
        os.rename(staging / name, drop / name)
    assert_all_locked(sim, watcher, ['/drop/mine-moved.txt', '/drop/granted-moved.txt'], timeout=20)
    assert wait_for(lambda: '/drop/roots.txt' in failed_records(watcher), 20)
    watcher.stop()
    assert 'WRITE_ACL' in failed_records(watcher)['/drop/roots.txt']['error']
    assert locks_on_cluster(sim, ['/drop/roots.txt'])['/drop/roots.txt'] == UNLOCKED


def test_a_catch_up_scan_goes_on_past_a_directory_it_may_not_list(sim, tmp_path, caplog):
    # The scan the watcher runs at start, after reconnects and every --rescan-every, by an
    # account that may list /tree and /tree/open but not /tree/closed (root's, mode 0700).
    for name in ('tree/top.txt', 'tree/closed/hidden.txt', 'tree/open/seen.txt', 'tree/open/deeper/also.txt'):
        (sim.root / name).parent.mkdir(parents=True, exist_ok=True)
        (sim.root / name).write_text(name)
    sim.control('fs/permissions', {'path': '/tree/closed', 'mode': '0700'})
    config = load_cluster_config(sim.write_config(tmp_path / 'locker.ini', USERNAME='locker', PASSWORD='locker'))
    loop = WatchLoop(connect(config), config, WatchOptions(directory_path='/tree', recursive=True), None, None, None)
    loop.resolve_directory()
    caplog.set_level(logging.INFO, logger='wormlock.watcher')
    for scan in (1, 2):
        caplog.clear()
        assert loop.scan_once() == 3  # top.txt, seen.txt, also.txt: the closed directory did not stop it
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [
            'catch-up scan of /tree: cannot list /tree/closed/ (403 fs_access_denied_error: Access denied: '
            'locker lacks READ on /tree/closed/); the files in it are not checked'
        ], scan  # once per scan, with the cluster's reason
        done = [r.getMessage() for r in caplog.records if r.getMessage().startswith('catch-up scan of /tree: 3')]
        assert len(done) == 1 and done[0].endswith(', 1 directory not listed'), done
    assert len(loop.schedule) == 3


@pytest.mark.parametrize('daemon', [False, True], ids=['foreground', 'daemon'])
def test_a_recursive_watch_without_the_data_administrators_role_is_refused_in_one_line(sim, tmp_path, drop, daemon):
    config = sim.write_config(tmp_path / 'locker.ini', USERNAME='locker', PASSWORD='locker')
    args = ['--config-file', config, '--directory-path', '/drop', '--legal-hold', '--recursive']
    if daemon:
        args += ['--run-as-daemon', '--pid-file', tmp_path / 'x.pid', '--log-file', tmp_path / 'd.log']
    done = run_tool(*args)
    assert done.returncode == 7, done.stderr  # WatchForbidden: a missing privilege or role
    assert done.stderr.count('\n') == 1 and done.stderr.startswith('qfs_filelock.py: error: '), done.stderr
    assert 'the cluster refused to watch /drop' in done.stderr
    assert 'a recursive watch needs the Data-Administrators role' in done.stderr
    assert 'QFS File Lock' not in done.stdout and not (tmp_path / 'x.pid').exists()


def test_a_watch_of_a_directory_the_account_may_not_read_is_refused_in_one_line(sim, tmp_path, drop):
    sim.control('fs/permissions', {'path': '/drop', 'mode': '0700'})  # root's: locker may not READ it
    config = sim.write_config(tmp_path / 'locker.ini', USERNAME='locker', PASSWORD='locker')
    done = run_tool('--config-file', config, '--directory-path', '/drop', '--legal-hold')
    assert done.returncode == 7, done.stderr
    assert done.stderr == (
        'qfs_filelock.py: error: the cluster refused to watch /drop: fs_access_denied_error: Access denied: '
        'locker lacks READ on /drop/; a watch needs READ on the directory for the account\n'
    )
    assert 'QFS File Lock' not in done.stdout
