"""A qfs_filelock.py watcher as a real process against the emulator, and what the tests check
with it."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time


PROJECT = pathlib.Path(__file__).resolve().parents[2]

STARTED = []  # every Watcher of the running test; conftest.py kills those still running after it


class Watcher:
    """qfs_filelock.py running as a real process against `sim`, with an audit log to read."""

    def __init__(self, sim, workdir, directory='/drop', *extra, port=None, user='admin', recursive=True, env=None):
        """`user`: the cluster account it logs in as (the emulator's passwords are the names);
        `env`: variables added to its environment."""
        self.audit = pathlib.Path(workdir) / 'audit.jsonl'
        self.log = pathlib.Path(workdir) / f'watcher-{time.monotonic_ns()}.log'
        config = sim.write_config(
            pathlib.Path(workdir) / f'qfs_filelock_config-{user}.ini',
            API_PORT=port or sim.port,
            USERNAME=user,
            PASSWORD=user,
        )
        args = ['--config-file', str(config), '--audit-log', str(self.audit), '--output', str(self.log)]
        if directory is not None:  # None: the folders come from a --policy file in `extra`
            args += ['--directory-path', directory, *(['--recursive'] if recursive else [])]
            if '--legal-hold' not in extra and '--retention' not in extra:
                args += ['--retention', '7d']
            if '--settle' not in extra and '--interval' not in extra:
                args += ['--interval', '0']
        self.proc = subprocess.Popen(
            [sys.executable, 'qfs_filelock.py', *args, *extra],
            cwd=PROJECT,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, **(env or {})),
        )
        STARTED.append(self)
        wait_for(lambda: 'watching' in self.log_text() or self.proc.poll() is not None, 20)
        assert self.proc.poll() is None, self.proc.stderr.read()

    def log_text(self):
        return self.log.read_text() if self.log.exists() else ''

    def records(self):
        if not self.audit.exists():
            return []
        records = []
        for line in self.audit.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                pass  # a line being written as we read, or cut short by a kill -9 of the watcher
        return records

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


def run_tool(*args, env=None, timeout=60):
    """Run qfs_filelock.py to its end (report, version, a refused start)."""
    return subprocess.run(
        [sys.executable, 'qfs_filelock.py', *map(str, args)],
        cwd=PROJECT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def wait_for(condition, timeout=10.0, step=0.1):
    """Poll `condition` until it returns something true or the deadline passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


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
