"""wormlock.service: one process for many folders, each under its own policy; the shared worker
pool; a SIGHUP that reloads the policy file without missing a file."""

import os
import signal
import time

import pytest

from tests.wormlock.rig import Watcher, assert_all_locked, locks_on_cluster, wait_for
from wormlock.locker import Outcome
from wormlock.policy import Folder
from wormlock.service import Service


def test_a_worker_that_fails_after_taking_a_file_leaves_it_to_be_tried_again(monkeypatch):
    # Stand-ins for the cluster side: the worker loop itself is what is under test.
    class Client:
        def clone(self):
            return self

    class Locker:
        def __init__(self, *args):
            pass

        def process(self, client, pending, at_once=True):
            return Outcome('locked', pending.file_id, pending.path)

    class Audit:
        def __init__(self):
            self.recorded = []

        def record(self, outcome):
            self.recorded.append((outcome.file_id, outcome.policy))
            if len(self.recorded) == 1:
                raise RuntimeError('an error nobody expected')

    monkeypatch.setattr('wormlock.service.Locker', Locker)
    audit = Audit()
    service = Service(
        Client(), None, [Folder('drop', '/drop', retention=None, legal_hold=True)], audit, None, workers=1
    )
    service.schedule.touch('5', '/drop/a', 0)
    for n in range(1):
        service._spawn(service._work, f'lock-worker-{n}')
    try:
        wait_for(lambda: len(audit.recorded) >= 2, 10, 0.05)
        assert audit.recorded == [('5', 'drop'), ('5', 'drop')]  # taken again after the worker started over
    finally:
        service.stop()
        service.drain(5)


def write_policy(tmp_path, text):
    path = tmp_path / 'policy.toml'
    path.write_text(text)
    return path


TWO_FOLDERS = """
[defaults]
interval = 0
exclude = ["*.tmp", "~$*", ".~lock.*#"]

[[folder]]
name = "finance"
path = "/finance"
recursive = true
retention = "7y"

[[folder]]
name = "case-17"
path = "/finance/legal"
legal_hold = "CASE-2026-17"
"""


def start_with_policy(sim, tmp_path, policy, folders):
    watcher = Watcher(sim, tmp_path, None, '--policy', str(policy))
    assert wait_for(lambda: watcher.log_text().count('catch-up scan of') >= folders, 20), watcher.log_text()
    return watcher


def test_two_folders_with_their_own_policies_in_one_process(sim, tmp_path):
    for folder in ('finance/legal', 'finance/q3'):
        (sim.root / folder).mkdir(parents=True)
    watcher = start_with_policy(sim, tmp_path, write_policy(tmp_path, TWO_FOLDERS), 2)
    files = {
        '/finance/q3/ledger.csv': 'finance',
        '/finance/legal/contract.pdf': 'case-17',  # the most specific folder's policy
        '/finance/legal/sub/draft.pdf': 'finance',  # case-17 is not recursive: finance holds it
    }
    ignored = ['/finance/q3/report.tmp', '/finance/legal/~$contract.docx', '/finance/q3/.~lock.ledger.csv#']
    for path in list(files) + ignored:
        target = sim.root / path.lstrip('/')
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path)
    assert wait_for(lambda: set(files) <= {r['path'] for r in watcher.records()}, 30), watcher.records()
    time.sleep(1)  # time enough for the excluded files to have been locked, were they not excluded
    watcher.stop()
    by_path = {r['path']: r for r in watcher.records()}
    assert {p: by_path[p]['policy'] for p in files} == files
    locks = locks_on_cluster(sim, list(files) + ignored)
    assert locks['/finance/legal/contract.pdf'] == {'legal_hold': True, 'retention_period': None}
    assert locks['/finance/q3/ledger.csv']['retention_period'] and not locks['/finance/q3/ledger.csv']['legal_hold']
    assert locks['/finance/legal/sub/draft.pdf']['retention_period']
    assert all(locks[p] == {'legal_hold': False, 'retention_period': None} for p in ignored)
    assert not set(ignored) & set(by_path)


def test_repeated_directory_paths_are_served_by_one_process(sim, tmp_path):
    for name in ('a', 'b'):
        (sim.root / name).mkdir()
    watcher = Watcher(sim, tmp_path, '/a', '--directory-path', '/b')
    assert wait_for(lambda: watcher.log_text().count('catch-up scan of') >= 2, 20)
    (sim.root / 'a/one.txt').write_text('1')
    (sim.root / 'b/two.txt').write_text('2')
    assert_all_locked(sim, watcher, ['/a/one.txt', '/b/two.txt'], timeout=30)
    watcher.stop()
    assert {r['policy'] for r in watcher.records()} == {'/a', '/b'}


def test_sighup_reloads_the_policy_and_misses_nothing_written_during_it(sim, tmp_path):
    for folder in ('old', 'new'):
        (sim.root / folder).mkdir()
    policy = write_policy(tmp_path, '[[folder]]\nname = "old"\npath = "/old"\nretention = "7d"\ninterval = 0\n')
    watcher = start_with_policy(sim, tmp_path, policy, 1)
    (sim.root / 'new/before.txt').write_text('written before /new was watched')
    policy.write_text(
        '[defaults]\ninterval = 0\n'
        '[[folder]]\nname = "old"\npath = "/old"\nretention = "30d"\n'
        '[[folder]]\nname = "new"\npath = "/new"\nlegal_hold = true\n'
    )
    watcher.proc.send_signal(signal.SIGHUP)
    for n in range(20):  # written while the reload runs
        (sim.root / f'new/during-{n}.txt').write_text(str(n))
        (sim.root / f'old/during-{n}.txt').write_text(str(n))
    assert wait_for(lambda: 'policy reloaded: 2 folders (1 added, 1 changed, 0 dropped)' in watcher.log_text(), 20)
    expected = ['/new/before.txt'] + [f'/{d}/during-{n}.txt' for d in ('new', 'old') for n in range(20)]
    assert wait_for(lambda: set(expected) <= watcher.locked_paths(), 30), sorted(set(expected) - watcher.locked_paths())
    locks = locks_on_cluster(sim, expected)
    assert all(locks[p]['legal_hold'] for p in expected if p.startswith('/new/'))
    assert all(locks[p]['retention_period'] for p in expected if p.startswith('/old/'))
    policy.write_text('[[folder]]\npath = "/old"\nretention = "not a period"\n')
    watcher.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: 'the policy file was not reloaded' in watcher.log_text(), 20)
    (sim.root / 'new/after-bad-reload.txt').write_text('still watched under the rules in force')
    assert wait_for(lambda: '/new/after-bad-reload.txt' in watcher.locked_paths(), 20)
    watcher.stop()


@pytest.mark.parametrize(
    'args, says',
    [
        (['--policy', '/nonexistent/policy.toml'], 'cannot read it'),
        (['--directory-path', '/a', '--directory-path', '/a', '--retention', '7d'], 'the same directory twice'),
    ],
)
def test_bad_folders_are_one_line_and_a_non_zero_exit(sim, tmp_path, args, says):
    from tests.wormlock.rig import run_tool

    config = sim.write_config(tmp_path / 'c.ini')
    done = run_tool('--config-file', config, *args)
    assert done.returncode in (2, 3) and says in done.stderr and 'Traceback' not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_policy_folder_named_twice_with_the_command_line_is_refused(sim, tmp_path):
    from tests.wormlock.rig import run_tool

    (sim.root / 'a').mkdir()
    policy = write_policy(tmp_path, '[[folder]]\npath = "/a"\nretention = "7d"\n')
    config = sim.write_config(tmp_path / 'c.ini')
    done = run_tool('--config-file', config, '--policy', policy, '--directory-path', '/a', '--retention', '7d')
    assert done.returncode == 3 and 'two folders have the path /a' in done.stderr
    assert os.path.exists(policy)
