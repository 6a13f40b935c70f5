"""qfs_filelock against the emulated cluster under the failures that matter to a compliance user:
bursts, dropped streams, a killed watcher, expired sessions, files still being written."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

PROJECT = pathlib.Path(__file__).resolve().parent.parent


class Watcher:
    """qfs_filelock.py running as a real process against `sim`, with an audit log to read."""

    def __init__(self, sim, workdir, directory='/drop', *extra):
        self.audit = pathlib.Path(workdir) / 'audit.jsonl'
        self.log = pathlib.Path(workdir) / f'watcher-{time.monotonic_ns()}.log'
        config = sim.write_config(pathlib.Path(workdir) / 'qfs_filelock_config.ini')
        args = ['--config-file', str(config), '--directory-path', directory, '--recursive',
                '--audit-log', str(self.audit), '--output', str(self.log)]
        if '--legal-hold' not in extra and '--retention' not in extra:
            args += ['--retention', '7d']
        if '--settle' not in extra and '--interval' not in extra:
            args += ['--interval', '0']
        self.proc = subprocess.Popen([sys.executable, 'qfs_filelock.py', *args, *extra], cwd=PROJECT,
                                     stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: 'watching' in self.log_text() or self.proc.poll() is not None, 20)
        assert self.proc.poll() is None, self.proc.stderr.read()

    def log_text(self):
        return self.log.read_text() if self.log.exists() else ''

    def records(self):
        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines() if line.strip()]

    def locked_paths(self):
        # 'already-locked': e.g. locked by a watcher killed before it could write its audit line.
        return {r['path'] for r in self.records() if r['result'] in ('locked', 'already-locked')}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        stderr = self.proc.stderr.read()
        assert self.proc.returncode == 0 and 'Traceback' not in stderr, stderr
        assert 'stopped:' in self.log_text()

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)


def wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def create_files(root, count, prefix='f', dirs=10):
    paths = []
    for i in range(count):
        path = root / f'd{i % dirs}' / f'{prefix}{i:05d}.dat'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'record %d' % i)
        paths.append('/' + str(path.relative_to(root.parent)))
    return paths


def locks_on_cluster(sim, paths):
    rc = sim.client()
    return {p: rc.fs.get_file_attr(path=p, retrieve_file_lock=True)['lock'] for p in paths}


def assert_all_locked(sim, watcher, paths, timeout=120):
    wait_for(lambda: set(paths) <= watcher.locked_paths(), timeout)
    unlocked = [p for p, lock in locks_on_cluster(sim, paths).items() if not lock['retention_period']]
    assert unlocked == [], f'{len(unlocked)} files left unlocked, e.g. {unlocked[:3]}'


def test_a_burst_of_5000_files_is_all_locked(sim, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    watcher = Watcher(sim, tmp_path)
    paths = create_files(drop, 5000)
    assert_all_locked(sim, watcher, paths)
    watcher.stop()
    assert not [r for r in watcher.records() if r['result'] == 'failed']


def test_streams_dropped_twice_mid_burst_leave_nothing_unlocked(sim, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    watcher = Watcher(sim, tmp_path)
    paths = create_files(drop, 2000, 'a')
    for batch in 'bc':
        assert sim.control('drop-streams')['dropped'] == 1
        paths += create_files(drop, 1500, batch)
        # the next drop must find a stream to end: wait for the watcher to be back
        assert wait_for(lambda: watcher.log_text().count('watching') >= 2 + (batch == 'c'), 30)
    assert_all_locked(sim, watcher, paths)
    assert watcher.log_text().count('reconnecting') >= 2
    watcher.stop()


def test_a_watcher_killed_mid_burst_and_restarted_leaves_nothing_unlocked(sim, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    first = Watcher(sim, tmp_path)
    paths = create_files(drop, 3000, 'a')
    wait_for(lambda: len(first.locked_paths()) >= 300, 60)
    first.kill()
    paths += create_files(drop, 1000, 'b')  # written while no watcher runs
    second = Watcher(sim, tmp_path)
    assert_all_locked(sim, second, paths)
    second.stop()


def test_a_file_written_in_pieces_is_locked_only_after_its_last_write(sim, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    watcher = Watcher(sim, tmp_path, '/drop', '--settle', '1')
    target = drop / 'video.mov'
    with open(target, 'wb') as f:
        for _ in range(7):  # 3 s of writing, a piece every half second
            f.write(b'x' * 1000)
            f.flush()
            time.sleep(0.5)
    last_write = time.time()
    assert wait_for(lambda: '/drop/video.mov' in watcher.locked_paths(), 20)
    record = next(r for r in watcher.records() if r['path'] == '/drop/video.mov')
    locked_at = time.mktime(time.strptime(record['time'][:19], '%Y-%m-%dT%H:%M:%S')) - time.timezone
    assert locked_at >= int(last_write) and record['size'] == '7000'
    watcher.stop()


def test_a_file_renamed_into_place_is_locked_under_its_final_name(sim, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    watcher = Watcher(sim, tmp_path)
    for i in range(20):
        temp = drop / f'.upload-{i}.tmp'
        temp.write_bytes(b'payload')
        os.rename(temp, drop / f'report-{i}.pdf')
    finals = [f'/drop/report-{i}.pdf' for i in range(20)]
    assert_all_locked(sim, watcher, finals)
    watcher.stop()
    assert not [r for r in watcher.records() if r['result'] == 'failed']
    assert not [r for r in watcher.records() if '.tmp' in (r['path'] or '') and r['result'] == 'locked']


def test_sessions_expired_mid_run_and_failing_calls_do_not_stop_it(sim, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    watcher = Watcher(sim, tmp_path)
    paths = create_files(drop, 50, 'a')
    assert_all_locked(sim, watcher, paths)
    sim.control('expire-sessions')
    sim.control('fail-next', {'count': 3, 'status': 503})
    paths += create_files(drop, 50, 'b')
    assert_all_locked(sim, watcher, paths)
    watcher.stop()
    assert 'logging in again' in watcher.log_text()


def test_an_existing_longer_retention_is_never_shortened(sim, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    (drop / 'kept.dat').write_bytes(b'x')
    sim.client().fs.modify_file_lock(path='/drop/kept.dat', retention_period='2035-01-01T00:00:00Z')
    watcher = Watcher(sim, tmp_path)
    assert wait_for(lambda: any(r['path'] == '/drop/kept.dat' for r in watcher.records()), 20)
    watcher.stop()
    assert [r['result'] for r in watcher.records()] == ['already-locked']
    assert locks_on_cluster(sim, ['/drop/kept.dat'])['/drop/kept.dat']['retention_period'] == '2035-01-01T00:00:00Z'


def test_legal_hold_and_retention_together(sim, tmp_path):
    drop = sim.root / 'drop'
    drop.mkdir()
    watcher = Watcher(sim, tmp_path, '/drop', '--legal-hold', '--retention', '2031-12-31', '--interval', '0')
    (drop / 'evidence.eml').write_bytes(b'mail')
    assert wait_for(lambda: '/drop/evidence.eml' in watcher.locked_paths(), 20)
    watcher.stop()
    lock = locks_on_cluster(sim, ['/drop/evidence.eml'])['/drop/evidence.eml']
    assert lock == {'legal_hold': True, 'retention_period': '2031-12-31T00:00:00Z'}
