"""qfs_filelock.py as a user runs it: a real process against the emulated cluster (sim/qumulo).

Every flag of the command line is used at least once and checked by what a user sees: the lock a
file ends up with (read back through the SDK, as `qq fs_file_get_attr --retrieve-file-lock` would),
the log, the audit log, the report. Every bad input must give ONE line on stderr, no traceback,
and the exit code the README documents (2 usage, 3 config, 4 unreachable, 6 credentials,
7 privilege, 8 not found, 1 anything else).
"""

import calendar
import csv
import datetime as dt
import io
import json
import os
import pathlib
import re
import signal
import socket
import stat
import subprocess
import sys
import time

import pexpect
import pytest

from tests.wormlock.rig import run_tool, wait_for

PROJECT = pathlib.Path(__file__).resolve().parents[2]
TOOL = [sys.executable, 'qfs_filelock.py']
UTC = dt.timezone.utc
HEADER_LINES = (
    'QFS File Lock 2.0',
    '  cluster:   ',
    '  directory: ',
    '  lock:      ',
    '  events:    ',
    '  rescan:    ',
)
FLAGS = (
    '--directory-path',
    '--file-id',
    '--file-num',
    '--config-file',
    '--configure',
    '--recursive',
    '--interval',
    '--debug',
    '--output',
    '--log-max-bytes',
    '--legal-hold',
    '--retention',
    '--run-as-daemon',
    '--pid-file',
    '--log-file',
    '--events',
    '--settle',
    '--workers',
    '--rescan-every',
    '--audit-log',
    '--report',
    '--expiring-within',
    '--unlocked-only',
    '--csv',
    '--json',
    '--dry-run',
    '--version',
)


# --- helpers ---------------------------------------------------------------------------------
def lock_of(cluster, path):
    return cluster.fs.get_file_attr(path=path, retrieve_file_lock=True)['lock']


def is_locked(lock):
    return bool(lock['legal_hold'] or lock['retention_period'])


def wait_locked(cluster, path, timeout=10.0):
    lock = wait_for(lambda: (lambda lk: lk if is_locked(lk) else None)(lock_of(cluster, path)), timeout)
    assert lock, f'{path} was not locked within {timeout} s: {lock_of(cluster, path)}'
    return lock


def parse_time(text):
    return dt.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=UTC)


def calendar_after(moment, period):
    """The expected end of a `7d` / `6m` / `2y` retention started at `moment` (calendar arithmetic)."""
    amount, unit = int(period[:-1]), period[-1]
    if unit == 'd':
        return moment + dt.timedelta(days=amount)
    months = moment.month - 1 + amount * (12 if unit == 'y' else 1)
    year, month = moment.year + months // 12, months % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.2', 0))
        return s.getsockname()[1]


def pid_alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(') ', 1)[1][0] != 'Z'
    except (FileNotFoundError, IndexError):
        return False


class Watcher:
    """qfs_filelock.py watching, started as a real process; its log is --output FILE or its stdout."""

    def __init__(self, workdir, args, ready='catch-up scan of'):
        args = [str(a) for a in args]
        self.stdout_path = workdir / f'stdout-{time.monotonic_ns()}.log'
        self.log_path = pathlib.Path(args[args.index('--output') + 1]) if '--output' in args else self.stdout_path
        with open(self.stdout_path, 'w') as stdout:
            self.proc = subprocess.Popen(
                [*TOOL, *args], cwd=PROJECT, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, text=True
            )
        # Ready once the stream is open and the start-up catch-up scan is done.
        wait_for(lambda: ready in self.log() or self.proc.poll() is not None, 20)
        assert self.proc.poll() is None, f'the watcher exited {self.proc.returncode}: {self.proc.stderr.read()}'
        assert ready in self.log(), self.log()

    def log(self):
        """The whole log, rotated parts (--log-max-bytes: FILE.2, FILE.1) first."""
        parts = sorted(
            self.log_path.parent.glob(self.log_path.name + '.*'),
            key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0,
        )
        return ''.join(p.read_text() for p in [*parts, self.log_path] if p.exists())

    def stdout(self):
        return self.stdout_path.read_text()

    def stop(self, signum=signal.SIGTERM):
        """Stop it as systemd or Ctrl-C would: exit 0, no traceback, the summary line last."""
        self.proc.send_signal(signum)
        self.proc.wait(30)
        stderr = self.proc.stderr.read()
        assert self.proc.returncode == 0, stderr
        assert 'Traceback' not in stderr + self.log(), stderr + self.log()
        log = self.log()
        assert f'{signal.Signals(signum).name} received: finishing the locks in progress' in log
        assert re.search(r' - INFO - stopped: .+\n\Z', log), log
        return log

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stderr.close()


@pytest.fixture
def config(sim, tmp_path):
    return sim.write_config(tmp_path / 'qfs_filelock_config.ini')


@pytest.fixture
def cluster(sim):
    """An SDK client logged in as admin, to read locks back as a user would with qq."""
    return sim.client()


@pytest.fixture
def start(tmp_path, config):
    """start(*args, config_file=..., ready=...) -> a running Watcher; any left running is killed."""
    started = []

    def start(*args, config_file=config, ready='catch-up scan of'):
        watcher = Watcher(tmp_path, ['--config-file', config_file, *args], ready)
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.kill()


def header(log):
    """The start-up header lines (without their time stamps)."""
    return [
        line.split(' - ', 2)[2]
        for line in log.splitlines()
        if line.count(' - ') >= 2 and line.split(' - ', 2)[2].startswith(HEADER_LINES)
    ]


# --- basics ----------------------------------------------------------------------------------
def test_version_prints_the_version():
    done = run_tool('--version')
    assert (done.returncode, done.stdout, done.stderr) == (0, 'qfs_filelock 2.0\n', '')


@pytest.mark.parametrize(
    'args, status, stdout_starts, stderr',
    [
        (['--version'], 0, 'qfs_filelock 2.0\n', ''),
        (['--help'], 0, 'usage: qfs_filelock.py ', ''),
        (['--bogus'], 2, '', 'qfs_filelock.py: error: unrecognized arguments: --bogus (see --help)\n'),
    ],
)
def test_run_from_a_plain_shell_it_answers_without_a_traceback(tmp_path, args, status, stdout_starts, stderr):
    # `./qfs_filelock.py` typed in a shell where the project's environment is not activated: the
    # system's python3 runs it, and the tool moves over to .venv by itself.
    done = subprocess.run(
        [str(PROJECT / 'qfs_filelock.py'), *args],
        cwd=tmp_path,
        env={'PATH': '/usr/bin:/bin'},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (status, stderr), done.stderr
    assert done.stdout.startswith(stdout_starts), done.stdout


def test_help_lists_every_flag():
    done = run_tool('--help')
    assert done.returncode == 0 and done.stderr == ''
    missing = [flag for flag in FLAGS if flag not in done.stdout]
    assert not missing, f'--help does not mention {missing}'


def test_directory_path_interval_0_locks_a_new_file_at_once_until_a_date(start, drop, cluster):
    watcher = start('--directory-path', '/drop', '--retention', '2031-12-31', '--interval', '0')
    written = time.monotonic()
    (drop / 'statement.pdf').write_bytes(b'%PDF-1.7')
    assert wait_locked(cluster, '/drop/statement.pdf') == {
        'legal_hold': False,
        'retention_period': '2031-12-31T00:00:00Z',
    }
    assert time.monotonic() - written < 5, '--interval 0 must lock at once, not after a delay'
    log = watcher.stop()
    directory_id = cluster.fs.get_file_attr(path='/drop')['id']
    lines = header(log)
    # The sim's password equals the user name: the user name is still shown (a password is redacted
    # where it stands, never as a word of ordinary text, which would give it away).
    assert lines.pop(1) == f'  cluster:   {cluster.conninfo.host}:{cluster.conninfo.port} as admin', lines
    assert lines == [
        'QFS File Lock 2.0',
        f'  directory: /drop (id {directory_id})',
        '  lock:      retention until 2031-12-31T00:00:00Z; lock at once; 8 workers',
        '  events:    child_file_added, child_data_written, child_file_moved_to',
        '  rescan:    at start, after reconnects and every 3600 s',
    ]
    assert 'locked /drop/statement.pdf (retention until 2031-12-31T00:00:00Z, legal hold False)' in log
    # Not always `1 locked`: two events for one file can be locked by two workers at once (reported).
    assert re.search(r'stopped: (.*, )?\d+ locked$', log.rstrip()), log.splitlines()[-1]
    assert ' - DEBUG - ' not in log and watcher.stdout() == log


@pytest.mark.parametrize('flag', ['--file-id', '--file-num'])
def test_file_id_and_its_alias_file_num_watch_the_directory(flag, start, drop, cluster):
    (drop / 'sub').mkdir()
    (drop / 'sub' / 'below.txt').write_text('not watched without --recursive')
    directory_id = cluster.fs.get_file_attr(path='/drop')['id']
    watcher = start(flag, directory_id, '--legal-hold', '--interval', '0')
    (drop / 'top.txt').write_text('watched')
    assert wait_locked(cluster, '/drop/top.txt') == {'legal_hold': True, 'retention_period': None}
    log = watcher.stop()
    assert f'  directory: /drop (id {directory_id})' in header(log)
    assert lock_of(cluster, '/drop/sub/below.txt') == {'legal_hold': False, 'retention_period': None}


@pytest.mark.slow
def test_interval_waits_that_long_after_the_event(start, drop, cluster):
    watcher = start('--directory-path', '/drop', '--legal-hold', '--interval', '2')
    written = time.monotonic()
    (drop / 'slow.dat').write_bytes(b'x' * 100)
    early = wait_for(lambda: is_locked(lock_of(cluster, '/drop/slow.dat')), 1.2)
    assert not early, 'locked before --interval 2 had passed'
    wait_locked(cluster, '/drop/slow.dat', 5)
    assert time.monotonic() - written >= 1.8
    assert '  lock:      legal hold; lock 2 s after an event; 8 workers' in header(watcher.stop())


def test_legal_hold_alone_sets_only_the_hold(start, drop, cluster):
    watcher = start('--directory-path', '/drop', '--legal-hold', '--interval', '0')
    (drop / 'evidence.eml').write_text('From: a@b')
    assert wait_locked(cluster, '/drop/evidence.eml') == {'legal_hold': True, 'retention_period': None}
    log = watcher.stop()
    assert 'locked /drop/evidence.eml (retention until None, legal hold True)' in log


def test_retention_never_clears_an_existing_legal_hold(start, drop, cluster):
    (drop / 'held.txt').write_text('on hold before the watcher started')
    cluster.fs.modify_file_lock(path='/drop/held.txt', legal_hold=True)
    watcher = start('--directory-path', '/drop', '--retention', '7d', '--interval', '0')
    # The start-up scan gives the held file its retention too, and keeps the hold.
    lock = wait_for(lambda: (lambda lk: lk if lk['retention_period'] else None)(lock_of(cluster, '/drop/held.txt')))
    assert lock and lock['legal_hold'] is True, lock
    (drop / 'new.txt').write_text('new')
    assert wait_locked(cluster, '/drop/new.txt')['legal_hold'] is False
    watcher.stop()
    assert lock_of(cluster, '/drop/held.txt')['legal_hold'] is True


@pytest.mark.parametrize('period', ['7d', '6m', '2y'])
def test_retention_period_counts_calendar_days_months_years(period, start, drop, cluster):
    watcher = start('--directory-path', '/drop', '--retention', period, '--interval', '0')
    before = dt.datetime.now(UTC).replace(microsecond=0)
    (drop / 'ledger.csv').write_text('a,b\n')
    lock = wait_locked(cluster, '/drop/ledger.csv')
    after = dt.datetime.now(UTC)
    until = parse_time(lock['retention_period'])
    assert (
        calendar_after(before, period) - dt.timedelta(seconds=5)
        <= until
        <= calendar_after(after, period) + dt.timedelta(seconds=5)
    ), (period, until)
    assert lock['legal_hold'] is False
    assert f'  lock:      retention {period}; lock at once; 8 workers' in header(watcher.stop())


def test_retention_and_legal_hold_together(start, drop, cluster):
    watcher = start('--directory-path', '/drop', '--retention', '2031-12-31', '--legal-hold', '--interval', '0')
    (drop / 'both.txt').write_text('both')
    assert wait_locked(cluster, '/drop/both.txt') == {'legal_hold': True, 'retention_period': '2031-12-31T00:00:00Z'}
    assert '  lock:      retention until 2031-12-31T00:00:00Z and legal hold; lock at once; 8 workers' in header(
        watcher.stop()
    )


def test_recursive_locks_files_in_new_subdirectories(start, drop, cluster):
    watcher = start('--directory-path', '/drop', '--recursive', '--legal-hold', '--interval', '0')
    (drop / '2031' / 'q4').mkdir(parents=True)
    (drop / '2031' / 'q4' / 'deep.txt').write_text('deep')
    wait_locked(cluster, '/drop/2031/q4/deep.txt')
    log = watcher.stop()
    assert '  directory: /drop (id ' in log and ', recursive' in [h for h in header(log) if 'directory' in h][0]
    assert 'watching /drop and everything below it for changes' in log


def test_events_choose_which_changes_start_a_lock(sim, start, drop, cluster):
    watcher = start('--directory-path', '/drop', '--legal-hold', '--interval', '0', '--events', 'child_file_moved_to')
    (drop / 'created.txt').write_text('created in place: no moved_to event')
    staging = sim.root / 'staging'
    staging.mkdir()
    (staging / 'upload.tmp').write_text('written elsewhere, then moved in')
    os.rename(staging / 'upload.tmp', drop / 'upload.dat')
    wait_locked(cluster, '/drop/upload.dat')
    log = watcher.stop()
    assert lock_of(cluster, '/drop/created.txt') == {'legal_hold': False, 'retention_period': None}
    assert '  events:    child_file_moved_to' in header(log)


def test_rescan_every_locks_files_no_event_announced(start, drop, cluster):
    watcher = start(
        '--directory-path',
        '/drop',
        '--legal-hold',
        '--interval',
        '0',
        '--events',
        'child_file_moved_to',
        '--rescan-every',
        '1',
    )
    (drop / 'missed.txt').write_text('no selected event for this one: only a catch-up scan finds it')
    wait_locked(cluster, '/drop/missed.txt', 8)
    log = watcher.stop()
    assert '  rescan:    at start, after reconnects and every 1 s' in header(log)
    assert len(re.findall(r'catch-up scan of /drop: \d+ files checked', log)) >= 2


def test_workers_1_locks_every_file_and_sigint_stops(start, drop, cluster):
    watcher = start('--directory-path', '/drop', '--legal-hold', '--interval', '0', '--workers', '1')
    names = [f'batch-{i}.dat' for i in range(6)]
    for name in names:
        (drop / name).write_bytes(name.encode())
    for name in names:
        wait_locked(cluster, f'/drop/{name}')
    log = watcher.stop(signal.SIGINT)
    assert '  lock:      legal hold; lock at once; 1 workers' in header(log)
    assert re.search(r'stopped: (.*, )?6 locked$', log.rstrip()), log.splitlines()[-1]


def test_settle_locks_only_once_the_file_is_quiet(start, drop, cluster):
    watcher = start('--directory-path', '/drop', '--legal-hold', '--settle', '1')
    with open(drop / 'growing.log', 'w') as growing:
        for i in range(8):  # 1.6 s of writes, never 1 s apart
            growing.write(f'line {i}\n')
            growing.flush()
            time.sleep(0.2)
            assert not is_locked(lock_of(cluster, '/drop/growing.log')), f'locked while still written ({i})'
    quiet_since = time.monotonic()
    wait_locked(cluster, '/drop/growing.log', 8)
    assert time.monotonic() - quiet_since >= 0.8
    assert '  lock:      legal hold; lock once quiet for 1 s; 8 workers' in header(watcher.stop())


def test_audit_log_has_one_json_line_per_action(tmp_path, start, drop, cluster):
    audit = tmp_path / 'audit' / 'filelock.jsonl'
    audit.parent.mkdir()
    watcher = start('--directory-path', '/drop', '--retention', '2031-12-31', '--interval', '0', '--audit-log', audit)
    (drop / 'audited.bin').write_bytes(b'12345')
    wait_locked(cluster, '/drop/audited.bin')
    log = watcher.stop()
    assert f' - INFO -   audit log: {audit}\n' in log
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    locked = [r for r in records if r['result'] == 'locked']
    assert locked and {r['path'] for r in locked} == {'/drop/audited.bin'}, records
    record = locked[0]
    assert {'time', 'file_id', 'path', 'size', 'retention_until', 'legal_hold', 'result'} <= set(record)
    assert record['file_id'] == cluster.fs.get_file_attr(path='/drop/audited.bin')['id']
    assert (record['path'], str(record['size'])) == ('/drop/audited.bin', '5')
    assert (record['retention_until'], record['legal_hold']) == ('2031-12-31T00:00:00Z', False)
    assert dt.datetime.strptime(record['time'], '%Y-%m-%dT%H:%M:%S.%fZ')


def test_dry_run_locks_nothing_and_needs_no_lock_privilege(sim, tmp_path, start, drop, cluster):
    (drop / 'old.txt').write_text('there before the start')
    nolock = sim.write_config(tmp_path / 'nolock.ini', USERNAME='nolock', PASSWORD='nolock')
    watcher = start('--directory-path', '/drop', '--legal-hold', '--interval', '0', '--dry-run', config_file=nolock)
    (drop / 'new.txt').write_text('written while watching')
    assert wait_for(lambda: 'dry run: would lock /drop/new.txt' in watcher.log())
    log = watcher.stop()
    assert 'QFS File Lock 2.0 (dry run: nothing will be locked)' in header(log)
    assert 'dry run: would lock /drop/old.txt (retention until None, legal hold True)' in log
    assert re.search(r'stopped: (.*, )?\d+ would-lock', log)
    assert ' - INFO - locked ' not in log
    for path in ('/drop/old.txt', '/drop/new.txt'):
        assert lock_of(cluster, path) == {'legal_hold': False, 'retention_period': None}


def test_output_and_debug_log_to_a_file_without_secrets(tmp_path, start, drop, cluster):
    output = tmp_path / 'filelock.log'
    watcher = start('--directory-path', '/drop', '--legal-hold', '--interval', '0', '--debug', '--output', output)
    (drop / 'a.txt').write_text('a')
    wait_locked(cluster, '/drop/a.txt')
    log = watcher.stop()
    assert watcher.stdout() == '', 'with --output nothing goes to stdout'
    assert len(header(log)) == len(HEADER_LINES)
    assert ' - DEBUG - ' in log and 'Authorization: Bearer <redacted>' in log
    assert 'session-v1:<redacted>' in log  # the login reply was logged, and scrubbed
    assert not re.search(r'session-v1:(?!<redacted>)', log), 'a bearer token leaked into the log'
    assert not re.search(r'Bearer (?!<redacted>)', log)
    assert not re.search(r"""["']password["']\s*:\s*["'](?!<redacted>)""", log), 'a password leaked into the log'


def test_log_max_bytes_rotates_the_output_file(tmp_path, start, drop, cluster):
    output = tmp_path / 'rotated.log'
    watcher = start(
        '--directory-path',
        '/drop',
        '--legal-hold',
        '--interval',
        '0',
        '--debug',
        '--output',
        output,
        '--log-max-bytes',
        '4000',
        ready='watching /drop',
    )
    (drop / 'r.txt').write_text('r')
    wait_locked(cluster, '/drop/r.txt')
    watcher.stop()
    assert pathlib.Path(f'{output}.1').exists()
    assert all(p.stat().st_size <= 4000 + 2000 for p in tmp_path.glob('rotated.log*'))


# --- configuration ---------------------------------------------------------------------------
@pytest.mark.slow
def test_configure_through_a_terminal_writes_a_private_file(sim, tmp_path):
    path = tmp_path / 'etc' / 'qfs_filelock_config.ini'
    path.parent.mkdir()
    child = pexpect.spawn(
        sys.executable,
        ['qfs_filelock.py', '--configure', '--config-file', str(path)],
        cwd=str(PROJECT),
        encoding='utf-8',
        timeout=20,
    )
    try:
        child.expect_exact(f'Configuring {path}')
        child.expect_exact('Enter API Host: ')
        child.sendline(sim.host)
        child.expect_exact('Enter API Port [8000]: ')
        child.sendline(str(sim.port))
        child.expect_exact('Enter Username: ')
        child.sendline('admin')
        child.expect_exact('Enter Password: ')
        child.sendline('admin')
        child.expect_exact('Enter Access Token')
        assert child.before.strip() == '', 'the password was echoed'
        child.expect_exact(': ')
        child.sendline('')
        child.expect_exact(f'Configuration saved to {path}')
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert f'API_HOST = {sim.host}' in text and f'API_PORT = {sim.port}' in text and 'USERNAME = admin' in text
    done = run_tool('--config-file', path, '--report', '/')
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize('where', ['environment', 'home-config'])
def test_config_file_is_found_without_config_file_flag(where, sim, tmp_path):
    (sim.root / 'x').mkdir()
    (sim.root / 'x' / 'f.txt').write_text('f')
    env = dict(os.environ, HOME=str(tmp_path / 'home'))
    env.pop('QFS_FILELOCK_CONFIG', None)
    if where == 'environment':
        env['QFS_FILELOCK_CONFIG'] = str(sim.write_config(tmp_path / 'elsewhere.ini'))
    else:
        (tmp_path / 'home' / '.config').mkdir(parents=True)
        sim.write_config(tmp_path / 'home' / '.config' / 'qfs_filelock_config.ini')
    done = run_tool('--report', '/x', '--csv', env=env)
    assert done.returncode == 0, done.stderr
    assert [row['path'] for row in csv.DictReader(io.StringIO(done.stdout))] == ['/x/f.txt']


# --- daemon ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_run_as_daemon_detaches_locks_and_stops_on_sigterm(tmp_path, config, drop, cluster):
    pid_file, log_file = tmp_path / 'run' / 'qfs_filelock.pid', tmp_path / 'log' / 'qfs_filelock.log'
    pid_file.parent.mkdir()
    log_file.parent.mkdir()
    gone = subprocess.Popen(['true'])  # a pid file left behind by a process that is gone is replaced
    gone.wait()
    pid_file.write_text(f'{gone.pid}\n')
    started = time.monotonic()
    done = run_tool(
        '--config-file',
        config,
        '--directory-path',
        '/drop',
        '--legal-hold',
        '--interval',
        '0',
        '--run-as-daemon',
        '--pid-file',
        pid_file,
        '--log-file',
        log_file,
        timeout=30,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, '', '')
    assert time.monotonic() - started < 15, 'the command must return once detached'
    assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() not in ('', str(gone.pid)), 10), (
        'no pid file'
    )
    pid = int(pid_file.read_text())
    try:
        assert pid_alive(pid)
        # The pid file is written before the daemon opens its log: the log may not exist yet.
        assert wait_for(lambda: log_file.exists() and 'catch-up scan of /drop' in log_file.read_text(), 20), (
            log_file.exists() and log_file.read_text()
        )
        (drop / 'nightly.tar').write_bytes(b'tar')
        assert wait_locked(cluster, '/drop/nightly.tar') == {'legal_hold': True, 'retention_period': None}
        # A second daemon on the same pid file is refused on the terminal.
        again = run_tool(
            '--config-file',
            config,
            '--directory-path',
            '/drop',
            '--legal-hold',
            '--run-as-daemon',
            '--pid-file',
            pid_file,
            '--log-file',
            log_file,
        )
        assert again.returncode == 1 and f'process {pid} named there is still running' in again.stderr
        assert again.stderr.count('\n') == 1
    finally:
        os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not pid_alive(pid) and not pid_file.exists(), 15), 'the daemon did not stop'
    log = log_file.read_text()
    assert len(header(log)) == len(HEADER_LINES), log
    assert f'removed the stale pid file {pid_file} (process {gone.pid} was gone)' in log
    assert 'locked /drop/nightly.tar' in log and 'SIGTERM received' in log
    assert re.search(r' - INFO - stopped: (.*, )?\d+ locked\n\Z', log), log
    assert 'Traceback' not in log and 'Logging error' not in log


# --- report ----------------------------------------------------------------------------------
@pytest.fixture
def records(sim, cluster):
    """/records: a legal hold, a far retention, one ending in 3 days, and two unlocked files."""
    root = sim.root / 'records'
    (root / 'sub').mkdir(parents=True)
    for name in ('held.txt', 'far.txt', 'sub/soon.txt', 'sub/open.txt', 'open2.txt'):
        (root / name).write_text(name)
    soon = (dt.datetime.now(UTC) + dt.timedelta(days=3)).strftime('%Y-%m-%dT%H:%M:%SZ')
    cluster.fs.modify_file_lock(path='/records/held.txt', legal_hold=True)
    cluster.fs.modify_file_lock(path='/records/far.txt', retention_period='2031-12-31T00:00:00Z')
    cluster.fs.modify_file_lock(path='/records/sub/soon.txt', retention_period=soon)
    return soon


def report(config, *args):
    done = run_tool('--config-file', config, '--report', '/records', *args)
    assert (done.returncode, done.stderr) == (0, ''), done.stderr
    return done.stdout


def test_report_table_lists_every_file_with_its_lock(config, records):
    lines = report(config).splitlines()
    assert lines[0].split() == [
        'path',
        'file_id',
        'size',
        'locked',
        'legal_hold',
        'retention_until',
        'days_left',
        'unreadable',
    ]
    assert set(lines[1]) <= {'-', ' '}
    rows = {line.split()[0]: line.split() for line in lines[2:-1]}
    assert list(rows) == [
        '/records/far.txt',
        '/records/held.txt',
        '/records/open2.txt',
        '/records/sub/open.txt',
        '/records/sub/soon.txt',
    ]
    assert rows['/records/held.txt'][3:5] == ['yes', 'yes']
    assert rows['/records/far.txt'][3:6] == ['yes', 'no', '2031-12-31T00:00:00Z']
    assert rows['/records/open2.txt'][3:] == ['no', 'no']
    assert lines[-1] == '5 files, 3 locked, 2 not locked'


def test_report_csv(config, records):
    rows = {row['path']: row for row in csv.DictReader(io.StringIO(report(config, '--csv')))}
    assert len(rows) == 5
    assert (rows['/records/held.txt']['locked'], rows['/records/held.txt']['legal_hold']) == ('True', 'True')
    assert rows['/records/sub/soon.txt']['retention_until'] == records
    assert 2.5 < float(rows['/records/sub/soon.txt']['days_left']) <= 3
    assert rows['/records/sub/open.txt']['locked'] == 'False'


def test_report_json(config, records):
    document = json.loads(report(config, '--json'))
    assert dt.datetime.strptime(document['generated'], '%Y-%m-%dT%H:%M:%SZ')
    files = {f['path']: f for f in document['files']}
    assert files['/records/held.txt']['legal_hold'] is True and files['/records/held.txt']['retention_until'] is None
    assert files['/records/far.txt']['locked'] is True and files['/records/open2.txt']['locked'] is False
    assert isinstance(files['/records/far.txt']['size'], int)


def test_report_unlocked_only_shows_the_drift(config, records):
    rows = list(csv.DictReader(io.StringIO(report(config, '--unlocked-only', '--csv'))))
    assert sorted(row['path'] for row in rows) == ['/records/open2.txt', '/records/sub/open.txt']


def test_report_expiring_within_shows_retentions_ending_soon(config, records):
    document = json.loads(report(config, '--expiring-within', '10', '--json'))
    assert [f['path'] for f in document['files']] == ['/records/sub/soon.txt']
    assert report(config, '--expiring-within', '1').splitlines()[-1] == '0 files, 0 locked, 0 not locked'


@pytest.fixture
def locker_config(sim, tmp_path):
    return sim.write_config(tmp_path / 'locker.ini', USERNAME='locker', PASSWORD='locker')


@pytest.fixture
def partly_unreadable(sim, records):
    """/records, and for `locker`: one file whose lock it may not read (its ACL denies READ_ACL)
    and one directory it may not list (root's, mode 0700)."""
    (sim.root / 'records' / 'secret.txt').write_text('secret')
    (sim.root / 'records' / 'closed').mkdir()
    (sim.root / 'records' / 'closed' / 'inside.txt').write_text('never seen by locker')
    deny = [
        {'type': 'DENIED', 'trustee': 'locker', 'rights': ['READ_ACL']},
        {'type': 'ALLOWED', 'trustee': 'Everyone', 'rights': ['READ_ATTR']},
    ]
    sim.control('fs/permissions', {'path': '/records/secret.txt', 'acl': deny})
    sim.control('fs/permissions', {'path': '/records/closed', 'mode': '0700'})


INCOMPLETE = (
    "qfs_filelock.py: error: the report is incomplete: 1 file's lock could not be read and 1 directory could "
    "not be listed (shown as unreadable, with the cluster's reason); reading a lock needs READ_ACL on the file, "
    'listing a directory READ on it\n'
)
SECRET_REASON = (
    'lock not readable: 403 fs_access_denied_error: Access denied: locker lacks READ_ACL on /records/secret.txt'
)
CLOSED_REASON = 'directory not listed: 403 fs_access_denied_error: Access denied: locker lacks READ on /records/closed/'


def test_report_shows_what_the_account_may_not_read_and_exits_7(locker_config, partly_unreadable):
    # The whole report is written; the rows it could not read say so and why, the summary counts
    # them, and exit 7 (a right refused) with one line tells a script the account is incomplete.
    done = run_tool('--config-file', locker_config, '--report', '/records')
    assert (done.returncode, done.stderr) == (7, INCOMPLETE), done.stderr
    lines = done.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert list(rows) == [
        '/records/closed/',
        '/records/far.txt',
        '/records/held.txt',
        '/records/open2.txt',
        '/records/secret.txt',
        '/records/sub/open.txt',
        '/records/sub/soon.txt',
    ]
    assert rows['/records/secret.txt'].split()[2:5] == ['6', '?', '?'] and rows['/records/secret.txt'].endswith(
        SECRET_REASON
    )
    assert rows['/records/closed/'].split()[2:4] == ['?', '?'] and rows['/records/closed/'].endswith(CLOSED_REASON)
    assert rows['/records/held.txt'].split()[3:5] == ['yes', 'yes'] and rows['/records/held.txt'].rstrip().endswith(
        'yes'
    )
    assert lines[-1] == '6 files, 3 locked, 2 not locked, 1 unreadable; 1 directory not listed'

    done = run_tool('--config-file', locker_config, '--report', '/records', '--csv')
    assert (done.returncode, done.stderr) == (7, INCOMPLETE)
    csv_rows = {row['path']: row for row in csv.DictReader(io.StringIO(done.stdout))}
    assert len(csv_rows) == 7
    assert csv_rows['/records/secret.txt']['unreadable'] == SECRET_REASON
    assert csv_rows['/records/secret.txt']['locked'] == csv_rows['/records/secret.txt']['legal_hold'] == ''
    assert csv_rows['/records/closed/']['unreadable'] == CLOSED_REASON
    assert csv_rows['/records/far.txt']['unreadable'] == '' and csv_rows['/records/far.txt']['locked'] == 'True'

    done = run_tool('--config-file', locker_config, '--report', '/records', '--json')
    assert (done.returncode, done.stderr) == (7, INCOMPLETE)
    document = json.loads(done.stdout)
    assert document['complete'] is False
    files = {f['path']: f for f in document['files']}
    assert files['/records/secret.txt'] == dict(
        files['/records/secret.txt'],
        size=6,
        locked=None,
        legal_hold=None,
        retention_until=None,
        days_left=None,
        unreadable=SECRET_REASON,
    )
    assert files['/records/closed/']['unreadable'] == CLOSED_REASON and files['/records/closed/']['size'] is None
    assert files['/records/open2.txt']['unreadable'] is None and files['/records/open2.txt']['locked'] is False


@pytest.mark.parametrize('flags', [['--unlocked-only'], ['--expiring-within', '10']])
def test_report_filters_keep_what_could_not_be_read(locker_config, partly_unreadable, flags):
    # A lock that could not be read may be missing or expiring: the filtered view keeps it.
    done = run_tool('--config-file', locker_config, '--report', '/records', '--json', *flags)
    assert (done.returncode, done.stderr) == (7, INCOMPLETE)
    paths = sorted(f['path'] for f in json.loads(done.stdout)['files'])
    unreadable = ['/records/closed/', '/records/secret.txt']
    if flags == ['--unlocked-only']:
        assert paths == sorted(['/records/open2.txt', '/records/sub/open.txt', *unreadable])
    else:
        assert paths == sorted(['/records/sub/soon.txt', *unreadable])


def test_report_by_an_account_that_may_read_everything_is_complete_and_exits_0(config, partly_unreadable):
    # admin has full access: the same tree gives a complete report.
    done = run_tool('--config-file', config, '--report', '/records', '--json')
    assert (done.returncode, done.stderr) == (0, '')
    document = json.loads(done.stdout)
    assert document['complete'] is True
    assert {f['path'] for f in document['files']} >= {'/records/secret.txt', '/records/closed/inside.txt'}
    assert not [f for f in document['files'] if f['unreadable']]


def test_report_asks_a_busy_cluster_again_and_keeps_stdout_the_report(sim, config, records):
    sim.control('fail-next', {'count': 3, 'status': 503, 'retry_after': 0})
    done = run_tool('--config-file', config, '--report', '/records', '--csv')
    assert done.returncode == 0, done.stderr
    assert len(list(csv.DictReader(io.StringIO(done.stdout)))) == 5  # nothing but the CSV on stdout
    warnings = done.stderr.splitlines()
    assert len(warnings) == 3 and all('answered 503' in line and 'trying again' in line for line in warnings)


def test_report_piped_into_head_ends_quietly(sim, config):
    many = sim.root / 'many'
    many.mkdir()
    for i in range(400):
        (many / f'file-{i:04d}-with-a-long-enough-name-to-fill-the-pipe.txt').write_text(str(i))
    proc = subprocess.Popen(
        [*TOOL, '--config-file', str(config), '--report', '/many'],
        cwd=PROJECT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # `| head -1` exits
    proc.wait(30)
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert first.split()[:3] == [b'path', b'file_id', b'size'] and first.split()[-1] == b'unreadable'
    assert stderr == '', stderr
    assert proc.returncode in (0, -signal.SIGPIPE)


# --- bad input: one line, no traceback, the documented exit code -------------------------------
def _not_a_text_file(tmp_path):
    path = tmp_path / 'binary.ini'
    path.write_bytes(b'\xff\xfe\x00\x01')
    return path


# One case per line: a table is easier to read and extend than what the formatter makes of it.
# fmt: off
BAD_INPUTS = {
    # id: (arguments, exit code, words of the one stderr line); {config} etc. are filled in below
    'unknown-flag': (['--directory-path', '/drop', '--legal-hold', '--bogus'], 2, 'unrecognized arguments: --bogus'),
    'no-lock-chosen': (['--directory-path', '/drop'], 2, 'nothing to lock with: give --retention PERIOD, --legal-hold'),
    'no-directory': (['--legal-hold'], 2, '--directory-path PATH, --file-id ID or --policy FILE'),
    'two-directories': (['--directory-path', '/drop', '--file-num', '2', '--legal-hold'], 2, 'not allowed with'),
    'relative-directory': (['--directory-path', 'drop', '--legal-hold'], 2, 'absolute cluster path'),
    'bad-retention': (['--directory-path', '/drop', '--retention', '5w'], 2, 'period like 7d, 6m, 2y or a date'),
    'bad-retention-date': (['--directory-path', '/drop', '--retention', '2031-13-45'], 2, "not '2031-13-45'"),
    'zero-retention': (['--directory-path', '/drop', '--retention', '0d'], 2, 'longer than zero'),
    'negative-interval': (['--directory-path', '/drop', '--legal-hold', '--interval', '-1'], 2, '--interval must be'),
    'not-a-number-interval': (['--directory-path', '/drop', '--legal-hold', '--interval', 'soon'], 2,
                              'argument --interval: invalid float value'),
    'zero-settle': (['--directory-path', '/drop', '--legal-hold', '--settle', '0'], 2, '--settle more than 0'),
    'negative-rescan-every': (['--directory-path', '/drop', '--legal-hold', '--rescan-every', '-1'], 2,
                              '--rescan-every must be 0'),
    'not-a-finite-interval': (['--directory-path', '/drop', '--legal-hold', '--interval', 'nan'], 2,
                              '--interval must be 0 or more'),
    'too-many-workers': (['--directory-path', '/drop', '--legal-hold', '--workers', '65'], 2, 'between 1 and 64'),
    # Durations past what a timer can wait for would kill every lock worker with OverflowError.
    'huge-interval': (['--directory-path', '/drop', '--legal-hold', '--interval', '1e10'], 2,
                      '--interval must be at most 2592000 s (30 days)'),
    'huge-settle': (['--directory-path', '/drop', '--legal-hold', '--settle', '1e10'], 2,
                    '--settle must be at most 2592000 s (30 days)'),
    'huge-rescan-every': (['--directory-path', '/drop', '--legal-hold', '--rescan-every', '1e10'], 2,
                          '--rescan-every must be at most 2592000 s (30 days)'),
    'huge-retention-years': (['--directory-path', '/drop', '--retention', '99999999y'], 2,
                             '--retention must be at most 1000y'),
    'huge-retention-days': (['--directory-path', '/drop', '--retention', '9999999999d'], 2,
                            '--retention must be at most 1000y'),
    'huge-expiring-within': (['--report', '/drop', '--expiring-within', '1e10'], 2,
                             '--expiring-within must be at most 365250 days'),
    'past-retention-date': (['--directory-path', '/drop', '--retention', '2020-01-01'], 2,
                            '--retention 2020-01-01T00:00:00Z is in the past'),
    'past-retention-time': (['--directory-path', '/drop', '--retention', '2021-06-30T12:00:00Z'], 2,
                            '--retention 2021-06-30T12:00:00Z is in the past'),
    'unknown-event': (['--directory-path', '/drop', '--legal-hold', '--events', 'child_file_created'], 2,
                      'unknown event type child_file_created'),
    'csv-and-json': (['--report', '/drop', '--csv', '--json'], 2, 'choose one of --csv and --json'),
    'relative-report': (['--report', 'drop'], 2, '--report must be an absolute cluster path'),
    'report-flag-without-report': (['--directory-path', '/drop', '--legal-hold', '--unlocked-only'], 2,
                                   '--unlocked-only only go with --report'),
    'negative-expiring-within': (['--report', '/drop', '--expiring-within', '-1'], 2, '0 or more days'),
    'missing-config': (['--config-file', '{tmp}/nowhere.ini', '--directory-path', '/drop', '--legal-hold'], 3,
                       'config file not found (given by --config-file)'),
    'missing-config-from-env': (['--directory-path', '/drop', '--legal-hold'], 3, '(given by $QFS_FILELOCK_CONFIG)'),
    'config-is-a-directory': (['--config-file', '{tmp}', '--directory-path', '/drop', '--legal-hold'], 3,
                              'is a directory, not a config file'),
    'config-not-text': (['--config-file', '{binary}', '--directory-path', '/drop', '--legal-hold'], 3,
                        'not a text file'),
    'config-without-host': (['--config-file', '{nohost}', '--directory-path', '/drop', '--legal-hold'], 3,
                            'API_HOST is missing'),
    'unreachable-cluster': (['--config-file', '{closed}', '--directory-path', '/drop', '--legal-hold'], 4,
                            'connection refused'),
    'unreachable-cluster-report': (['--config-file', '{closed}', '--report', '/drop'], 4, 'cannot reach the cluster'),
    'bad-credentials': (['--config-file', '{badpw}', '--directory-path', '/drop', '--legal-hold'], 6,
                        'rejected the credentials'),
    'no-lock-privilege': (['--config-file', '{nolock}', '--directory-path', '/drop', '--legal-hold'], 7,
                          'user nolock lacks the privilege PRIVILEGE_FS_FILE_LOCK_WRITE'),
    'missing-directory': (['--directory-path', '/no/such/dir', '--legal-hold'], 8, '/no/such/dir does not exist'),
    'missing-file-id': (['--file-id', '987654321', '--legal-hold'], 8, 'file id 987654321 does not exist'),
    'not-a-directory': (['--directory-path', '/drop/file.txt', '--legal-hold'], 1, 'is not a directory'),
    'missing-report-path': (['--report', '/no/such/dir'], 8, 'does not exist'),
    'recursive-disabled-error': (['--directory-path', '/drop', '--legal-hold', '--recursive'], 1,
                                 "recursive_mode is DISABLED_ERROR"),
    'recursive-disabled-ignore': (['--directory-path', '/drop', '--legal-hold', '--recursive'], 1,
                                  "recursive_mode is DISABLED_IGNORE"),
    'output-in-missing-directory': (['--directory-path', '/drop', '--legal-hold', '--output', '{tmp}/no/x.log'], 2,
                                    'cannot write log file'),
    'audit-log-in-missing-directory': (['--directory-path', '/drop', '--legal-hold', '--audit-log',
                                        '{tmp}/no/audit.jsonl'], 2, '--audit-log'),
    'daemon-pid-file-not-writable': (['--directory-path', '/drop', '--legal-hold', '--run-as-daemon',
                                      '--pid-file', '{tmp}/no/x.pid', '--log-file', '{tmp}/d.log'], 2, '--pid-file'),
    'daemon-log-file-not-writable': (['--directory-path', '/drop', '--legal-hold', '--run-as-daemon',
                                      '--pid-file', '{tmp}/x.pid', '--log-file', '{tmp}/no/d.log'], 2, '--log-file'),
    'daemon-no-lock-privilege': (['--config-file', '{nolock}', '--directory-path', '/drop', '--legal-hold',
                                  '--run-as-daemon', '--pid-file', '{tmp}/x.pid', '--log-file', '{tmp}/d.log'], 7,
                                 'PRIVILEGE_FS_FILE_LOCK_WRITE'),
    'daemon-missing-directory': (['--directory-path', '/nowhere', '--legal-hold', '--run-as-daemon',
                                  '--pid-file', '{tmp}/x.pid', '--log-file', '{tmp}/d.log'], 8, 'does not exist'),
}
# fmt: on


@pytest.mark.parametrize('case', list(BAD_INPUTS))
def test_bad_input_gets_one_line_and_its_exit_code(case, sim, tmp_path, config, drop, cluster):
    args, code, words = BAD_INPUTS[case]
    (drop / 'file.txt').write_text('a file, not a directory')
    if case.startswith('recursive-'):
        cluster.fs.set_notify_settings(recursive_mode=case.split('-', 1)[1].upper().replace('-', '_'))
    env = dict(os.environ, QFS_FILELOCK_CONFIG=str(config))
    if case == 'missing-config-from-env':
        env['QFS_FILELOCK_CONFIG'] = str(tmp_path / 'gone.ini')
    values = {
        'tmp': tmp_path,
        'binary': _not_a_text_file(tmp_path),
        'closed': sim.write_config(tmp_path / 'closed.ini', API_PORT=closed_port()),
        'badpw': sim.write_config(tmp_path / 'badpw.ini', PASSWORD='not-the-password'),
        'nolock': sim.write_config(tmp_path / 'nolock.ini', USERNAME='nolock', PASSWORD='nolock'),
        'nohost': sim.write_config(tmp_path / 'nohost.ini', API_HOST=None),
    }
    done = run_tool(*[a.format(**values) for a in args], env=env)
    assert done.returncode == code, (done.returncode, done.stderr)
    assert done.stderr.count('\n') == 1 and done.stderr.endswith('\n'), done.stderr
    assert done.stderr.startswith('qfs_filelock.py: error: '), done.stderr
    assert 'Traceback' not in done.stderr + done.stdout
    assert words in done.stderr, done.stderr
    assert not (tmp_path / 'x.pid').exists(), 'a refused daemon must not have started'
    assert not re.search(r'QFS File Lock', done.stdout), 'nothing may be watched after a refusal'
