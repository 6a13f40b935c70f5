"""The lock manager's step of `make demo`: handles opened by SMB clients, listed and closed."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from lockmanager.cluster import LockCluster
from sim.qumulo.samples import open_sample_handles

PROJECT = Path(__file__).resolve().parent.parent
SCRIPT = PROJECT / 'qumulo_lock_manager.py'
WINDOW_SHOWN_S = 60


def _run(say: Callable[[str], None], config: Path, *args: str) -> None:
    say(f'   $ ./qumulo_lock_manager.py --config-file {config.name} {" ".join(args)}')
    done = subprocess.run(
        [sys.executable, str(SCRIPT), '--config-file', str(config), *args],
        cwd=PROJECT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    for line in (done.stdout + done.stderr).splitlines():
        say(f'     {line}')
    say(f'     (exit {done.returncode})')


def demo_step(cluster, client, say: Callable[[str], None]) -> None:
    say('qumulo_lock_manager.py lists SMB file handles with their users, clients and locks, and closes them:')
    open_sample_handles(cluster)
    workdir = cluster.root.parent
    config = cluster.write_config(workdir / 'qumulo_lock_manager_config.ini')
    viewer = cluster.write_config(workdir / 'qumulo_lock_manager_viewer.ini', USERNAME='viewer', PASSWORD='viewer')
    _run(say, config, '--list')
    _run(say, config, '--close', '--path', 'budget', '--user', 'alice', '--yes')
    _run(say, viewer, '--close', '--path', 'Q3', '--yes')
    left = LockCluster(client).fetch().rows
    say(f'   {len(left)} handles are still open on the cluster.')
    if os.environ.get('DISPLAY'):
        _show_window(say, config)
    else:
        say('   (no $DISPLAY here, so the window is not shown: run ./qumulo_lock_manager.py on a desktop)')


def _show_window(say: Callable[[str], None], config: Path) -> None:
    window = subprocess.Popen(
        [sys.executable, str(SCRIPT), '--config-file', str(config)], cwd=PROJECT, stdin=subprocess.DEVNULL
    )
    say(
        f'   The window is open on {os.environ["DISPLAY"]}; the demo goes on when it is closed '
        f'(or after {WINDOW_SHOWN_S} s).'
    )
    deadline = time.monotonic() + WINDOW_SHOWN_S
    while window.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if window.poll() is None:
        window.terminate()
        window.wait(10)
