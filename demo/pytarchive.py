"""pytarchive's step of `make demo`: the service on the virtual tape library; a small folder is
prepared, archived (copied, read back, verified), listed by summary and deleteable, and restored
into another folder; the drive is left empty at the end."""

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def demo_step(cluster, client, say):
    if os.geteuid() != 0:
        say('pytarchive: skipped, the virtual tape library mounts its tapes and needs root')
        return
    with tempfile.TemporaryDirectory(prefix='pytarchive-demo-') as workdir:
        work = Path(workdir)
        library = work / 'library'
        init = _run(
            '-m',
            'sim.tapelib',
            'init',
            str(library),
            '--slots',
            '6',
            '--drives',
            '1',
            '--tapes',
            'TPN001L9,TPN002L9,CLN001L1',
            '--capacity',
            '500M',
        )
        config = work / 'pytarchive.conf'
        config.write_text(
            init.stdout + f'\n[Service]\nsocket = {work / "pytarchive.sock"}\ndatabase = {work / "pytarchive.db"}\n'
        )
        say(
            'pytarchive: the service on a virtual library (sim/tapelib: 6 slots, 1 drive, 2 data tapes and a cleaning tape)'
        )
        service = subprocess.Popen(
            [sys.executable, '-m', 'pytarchive.service', '--config-file', str(config)],
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            stderr=open(work / 'service.log', 'w'),
        )
        try:
            _wait_for_socket(work / 'pytarchive.sock', service)
            folder = _sample_folder(work / 'projects' / 'field survey 2026')
            restored = work / 'restored'
            for command in (
                ['scan', '--wait'],
                ['format', 'TPN001L9', '--wait'],
                ['format', 'CLN001L1'],
                ['prepare', str(folder), 'field survey, raw data', '--wait'],
                ['archive', str(folder), 'TPN001L9', '--wait'],
                ['summary'],
                ['deleteable'],
                ['restore', str(folder), '--to', str(restored), '--wait'],
            ):
                _client(config, say, *command)
            same = _contents(folder) == _contents(restored)
            say(
                f'   restored copy {"identical to" if same else "DIFFERS from"} the original '
                f'({len(_contents(folder))} entries compared); the original was never touched'
            )
            _client(config, say, 'queue')
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(120)
            drive = _run(str(library / 'bin' / 'mtx'), '-f', str(library / 'dev' / 'sch0'), 'status').stdout
            say(
                f'   service stopped (exit {service.returncode}); mtx status: '
                f'{next(line for line in drive.splitlines() if "Data Transfer Element 0" in line).strip()}'
            )
            _run('-m', 'sim.tapelib', 'cleanup', str(library))


def _sample_folder(root):
    (root / 'photos').mkdir(parents=True)
    (root / 'empty').mkdir()
    for index in range(5):
        (root / 'photos' / f'site {index}.raw').write_bytes(os.urandom(200_000))
    (root / 'notes é.txt').write_text('measured at dawn\n')
    (root / 'latest').symlink_to('photos/site 4.raw')
    return root


def _contents(root):
    return {
        str(path.relative_to(root)): (
            os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else 'dir'
        )
        for path in root.rglob('*')
    }


def _run(*args):
    command = list(args) if not args[0].startswith('-') else [sys.executable, *args]
    return subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=300)


def _client(config, say, *args):
    done = _run('-m', 'pytarchive', '--config-file', str(config), *args)
    say(f'   $ pytarchive {shlex.join(args)}')
    for line in (done.stdout + done.stderr).rstrip().splitlines():
        say(f'     {line}')


def _wait_for_socket(path, service, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and service.poll() is None:
        with socket.socket(socket.AF_UNIX) as probe:
            if probe.connect_ex(str(path)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError('the pytarchive service did not start')
