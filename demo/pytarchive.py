"""pytarchive's step of `make demo`: the service on the virtual tape library, which runs the real
reference LTFS (mkltfs, ltfs, built by `make ltfs`) and Debian's real mtx through the SCSI shim.

The step shows the LTFS version and the library as the real `mtx status` reports it, then a small
folder is prepared, archived (copied, read back, verified), listed by summary and deleteable,
explored (its tape mounted read-only and exported through sim/exportfs.py, the exportfs stand-in)
and restored into another folder, with the messages mkltfs printed when the service formatted the
tape; the drive is left empty at the end and the library cleaned up."""

import configparser
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
        if init.returncode != 0:
            raise RuntimeError(f'sim.tapelib init failed: {init.stderr.strip()}')
        try:
            _with_library(work, library, init.stdout, say)
        finally:
            _run('-m', 'sim.tapelib', 'cleanup', str(library))


def _with_library(work, library, config_lines, say):
    device = configparser.ConfigParser(interpolation=None)
    device.read_string(config_lines)
    device = device['Device']
    mtx = shlex.split(device['mtx'])  # `env LD_PRELOAD=... /usr/sbin/mtx`
    changer = [*mtx, '-f', device['library']]
    config = work / 'pytarchive.conf'
    exportfs = f'env PYTHONPATH={PROJECT} {sys.executable} -m sim.exportfs --table {work / "exports.json"}'
    config.write_text(
        config_lines
        + f'\n[Service]\nsocket = {work / "pytarchive.sock"}\ndatabase = {work / "pytarchive.db"}\n'
        + f'\n[Export]\nto = 127.0.0.1\nsettings = ro\nexportfs = {exportfs}\n'
    )
    say(
        'pytarchive: the service on a virtual library (sim/tapelib: 6 slots, 1 drive, 2 data tapes and a cleaning tape)'
    )
    ltfs = Path(device['ltfs'])
    say(
        f'   {_first_line(ltfs, "-V")}: the real mkltfs and ltfs ({_shown(ltfs.parent)}), '
        f'its `file` backend keeps each cartridge in a folder'
    )
    say(
        f'   {_first_line(mtx[-1], "--version")} ({mtx[-1]}): an LD_PRELOAD shim answers its SCSI commands as the robot'
    )
    _mtx_status(changer, say)
    with open(work / 'service.log', 'w') as log:
        service = subprocess.Popen(
            [sys.executable, '-m', 'pytarchive.service', '--config-file', str(config)],
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            stderr=log,
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
            ['explore', str(folder)],
            ['restore', str(folder), '--to', str(restored), '--wait'],
        ):
            _client(config, say, *command)
            if command[:2] == ['format', 'TPN001L9']:
                _mkltfs_messages(work / 'service.log', say)
            if command[0] == 'explore':
                _explore_until_seen(config, exportfs, say)
        same = _contents(folder) == _contents(restored)
        say(
            f'   restored copy {"identical to" if same else "DIFFERS from"} the original '
            f'({len(_contents(folder))} entries compared); the original was never touched'
        )
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(120)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
    status = _run(*changer, 'status').stdout.splitlines()
    shown = [
        line.strip() for line in status if line.strip().startswith(('Data Transfer Element 0', 'Storage Element 1:'))
    ]
    say(f'   service stopped (exit {service.returncode}); mtx status: {", ".join(shown) or "(nothing printed)"}')


def _shown(path):
    path = Path(path)
    return str(path.relative_to(PROJECT)) if path.is_relative_to(PROJECT) else str(path)


def _first_line(*command):
    done = _run(*map(str, command))
    return next(iter((done.stdout + done.stderr).splitlines()), f'{command[0]}: no version printed').rstrip('.')


def _mtx_status(changer, say):
    done = _run(*changer, 'status')
    say(f'   $ {shlex.join(["mtx", *changer[-2:], "status"])}')
    for line in (done.stdout + done.stderr).rstrip().splitlines():
        say(f'     {line.rstrip()}')


def _mkltfs_messages(log, say):
    """What the real mkltfs said of the new volume, as the service logged it."""
    lines = log.read_text(errors='replace').splitlines() if log.exists() else []
    said = [line.split(' as TPN001 (TPN001L9): ', 1)[1] for line in lines if ' as TPN001 (TPN001L9): ' in line]
    say('     the real mkltfs said, as the service logged it:')
    for message in said[0].split('; ') if said else ['(nothing: the service did not run mkltfs)']:
        say(f'       {message}')


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


def _explore_until_seen(config, exportfs, say, timeout=60):
    """Wait for the export to show in the stand-in's table, show it, and end the explore."""
    deadline = time.monotonic() + timeout
    listed = []
    while time.monotonic() < deadline and not listed:
        listed = _run(*shlex.split(exportfs), '-v').stdout.splitlines()
        time.sleep(0.2)
    say('   $ exportfs -v   (sim/exportfs.py, the stand-in: no NFS server runs here)')
    for line in listed or ['(nothing exported within 60 s)']:
        say(f'     {line}')
    _client(config, say, 'explore', '--stop')


def _wait_for_socket(path, service, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and service.poll() is None:
        with socket.socket(socket.AF_UNIX) as probe:
            if probe.connect_ex(str(path)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError('the pytarchive service did not start')
