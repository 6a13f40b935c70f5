"""The `make demo` step for qfs_filelock: the watcher locks files as they are written, then the
report shows every file's lock state."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

PROJECT = pathlib.Path(__file__).resolve().parent.parent


def _tool(*args):
    return [sys.executable, str(PROJECT / 'qfs_filelock.py'), *args]


def demo_step(cluster, client, say):
    workdir = pathlib.Path(cluster.root).parent
    config = cluster.write_config(workdir / 'qfs_filelock_config.ini')
    audit, log = workdir / 'filelock-audit.jsonl', workdir / 'filelock.log'
    records = cluster.root / 'records'
    records.mkdir()
    (records / 'old-ledger.csv').write_text('written before the watcher started\n')
    say('qfs_filelock.py: watching /records (recursive, retention 7d, lock once quiet for 1 s)')
    watcher = subprocess.Popen(
        _tool(
            '--config-file',
            str(config),
            '--directory-path',
            '/records',
            '--recursive',
            '--retention',
            '7d',
            '--settle',
            '1',
            '--audit-log',
            str(audit),
            '--output',
            str(log),
        ),
        cwd=PROJECT,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: log.exists() and 'watching' in log.read_text())
        (records / '2026').mkdir()
        with open(records / '2026' / 'trades.csv', 'w') as f:
            for line in range(3):  # written in pieces: locked only after the last one
                f.write(f'trade {line}\n')
                f.flush()
                time.sleep(0.4)
        (records / '.upload.tmp').write_text('statement')
        os.rename(records / '.upload.tmp', records / 'statement.pdf')
        _wait(lambda: audit.exists() and len(audit.read_text().splitlines()) >= 3)
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(60)
    for line in audit.read_text().splitlines():
        entry = json.loads(line)
        say(f'  audit: {entry["result"]:<15} {entry["path"]:<28} until {entry["retention_until"]}')
    say('qfs_filelock.py --report /records:')
    (records / 'unlocked-later.txt').write_text('written after the watcher stopped\n')
    report = subprocess.run(
        _tool('--config-file', str(config), '--report', '/records'),
        cwd=PROJECT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    for line in report.stdout.splitlines():
        say('  ' + line)


def _wait(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
