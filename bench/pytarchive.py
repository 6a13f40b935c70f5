"""pytarchive's data paths against the standard tools, measured in the same run on the same disk:
sudo .venv/bin/python -m bench.pytarchive [--json] [--big-files N] [--small-files N] [--prepare-files N]

1. archive: the archive task's copy step (copy + BLAKE3 of every byte read + manifest rows) from a
   folder to a tape of the virtual library, against `cp -a` of the same folder to the same tape,
   each timed until its data reached the tape's device (sync). Aim: at least 0.85 of cp's throughput.
2. verify: the archive task's verification step (read back + BLAKE3, one file at a time) over the files on
   the tape, against `sha256sum` over the same files. Aim: at least 0.9.
3. prepare: the prepare task on --prepare-files small files (walk, manifest, tar | zstd streamed),
   against `tar -c | zstd` (zstd's defaults) of the same folder. Aim: at least 0.8.
Each figure is the best of --rounds runs; the two sides alternate so neither gets a warmer cache.
Needs root (the virtual library loop-mounts its tapes).
"""

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.table import print_table
from pytarchive import config as configuration
from pytarchive.resources import DriveResources
from pytarchive.state import folders
from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskContext, TaskStorage
from pytarchive.tasks import archive, prepare

PROJECT = Path(__file__).resolve().parent.parent

AIMS = {'archive': 0.85, 'verify': 0.9, 'prepare': 0.8}
TAPE = 'TPN001L9'
MIB = 1 << 20


def timed(function, flushed: bool = False) -> float:
    """Seconds the call took, started with no dirty pages pending (the previous run's writeback
    would otherwise land on whichever side runs next). flushed: until its writes reached the
    device too (sync), as data is archived only once it is on the tape."""
    os.sync()
    start = time.perf_counter()
    function()
    if flushed:
        os.sync()
    return time.perf_counter() - start


def shell(command: str) -> None:
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)


def make_data(root: Path, big: int, small: int) -> int:
    """big files of 32 MiB and small files of 64 KiB, random bytes; returns the total size."""
    (root / 'big').mkdir(parents=True)
    chunk = os.urandom(MIB)
    for index in range(big):
        with open(root / 'big' / f'{index:04d}.bin', 'wb') as out:
            for block in range(32):
                out.write(chunk[block:] + chunk[:block])
    for index in range(small):
        directory = root / 'small' / f'{index // 500:03d}'
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f'{index:05d}.dat').write_bytes(os.urandom(64 * 1024))
    return big * 32 * MIB + small * 64 * 1024


def make_small_files(root: Path, count: int) -> None:
    for index in range(count):
        directory = root / f'{index // 1000:04d}'
        if index % 1000 == 0:
            directory.mkdir(parents=True)
        (directory / f'{index:06d}.txt').write_bytes(os.urandom(256) + b'\n' * 768)


class Rig:
    """A virtual library with one formatted tape, a config for it and pytarchive's own objects."""

    def __init__(self, work: Path):
        self.work = work
        library = work / 'library'
        init = subprocess.run(
            [
                sys.executable,
                '-m',
                'sim.tapelib',
                'init',
                str(library),
                '--slots',
                '4',
                '--drives',
                '1',
                '--tapes',
                TAPE,
                '--capacity',
                '40G',
                '--index-write-seconds',
                '0',
            ],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=True,
        )
        self.library = library
        # The database on a file system of its own, as /var/lib/pytarchive is never on the tape: an
        # fsync on the file system holding the tape images would also flush the copy being timed.
        self.state = tempfile.TemporaryDirectory(prefix='pytarchive-bench-db-', dir='/dev/shm')
        config_path = work / 'pytarchive.conf'
        scratch = work / 'scratch'
        scratch.mkdir()
        config_path.write_text(
            init.stdout.replace('[General]\n', f'[General]\nscratch_path = {scratch}\n')
            + f'\n[Service]\ndatabase = {self.state.name}/state.db\n'
        )
        self.config = configuration.load(str(config_path))
        self.db = Database(self.config.service.database)
        self.storage = TaskStorage(self.db)
        self.resources = DriveResources(self.config, self.db)
        self.mountpoint = self.config.device.mountpoint

    def context(self, kind: str, **args) -> TaskContext:
        return TaskContext(self.storage.enqueue(kind, args), self.resources, self.storage, threading.Event())

    def fresh_tape(self) -> None:
        """The tape in the drive erased (mkltfs -f makes a new volume) and mounted."""
        drive = self.resources.drive
        drive.unmount()
        drive.format(volume_serial=TAPE[:6], name=TAPE, force=True)
        drive.mount()

    def close(self) -> None:
        try:
            self.resources.release()
        finally:
            self.db.close()
            self.state.cleanup()
            subprocess.run(
                [sys.executable, '-m', 'sim.tapelib', 'cleanup', str(self.library)], cwd=PROJECT, capture_output=True
            )


def bench_archive_and_verify(rig: Rig, source: Path, rounds: int) -> dict:
    prepare.run(rig.context('prepare', path=str(source)), str(source))
    folder = folders.latest(rig.db, str(source), (folders.PREPARED,))
    rig.resources.load(TAPE)
    on_tape = Path(rig.mountpoint) / 'copy'
    ours, theirs, verify_ours, verify_theirs = [], [], [], []
    for _ in range(rounds):
        # Each copy lands on a freshly formatted tape: on a fuller one (and with the previous copy's
        # writeback pending) whichever side ran later would be slower.
        rig.fresh_tape()
        theirs.append(timed(lambda: shell(f'cp -a "{source}" "{on_tape}"'), flushed=True))
        rig.fresh_tape()
        ctx = rig.context('archive', path=str(source), barcode=TAPE)
        ours.append(timed(lambda: archive._copy_tree(ctx, folder, str(on_tape), False), flushed=True))
        files = [str(path) for path in on_tape.rglob('*') if path.is_file()]
        listing = rig.work / 'files.txt'
        listing.write_text('\0'.join(files))
        verify_theirs.append(timed(lambda: shell(f'xargs -0 sha256sum < "{listing}"')))
        checked = folders.get(rig.db, folder['id'])
        verify_ours.append(timed(lambda: _verified(ctx, checked, on_tape)))
    return {'archive': (min(ours), min(theirs)), 'verify': (min(verify_ours), min(verify_theirs))}


def _verified(ctx, folder, on_tape):
    bad = archive._verify_tree(ctx, folder, str(on_tape))
    assert not bad, bad[:3]


def bench_prepare(rig: Rig, source: Path, rounds: int) -> tuple:
    config = rig.resources.config  # packed, as a folder of this many files would be with a lower threshold
    rig.resources.config = dataclasses.replace(config, general=dataclasses.replace(config.general, pack_threshold=1000))
    ours, theirs = [], []
    for _ in range(rounds):
        output = rig.work / 'baseline.tar.zst'
        theirs.append(timed(lambda: shell(f'tar -c -C "{source}" . | zstd -q -o "{output}" -f')))
        output.unlink()
        ctx = rig.context('prepare', path=str(source))
        ours.append(timed(lambda: prepare.run(ctx, str(source))))
    return min(ours), min(theirs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', action='store_true')
    parser.add_argument('--big-files', type=int, default=32, help='files of 32 MiB (default 32: 1 GiB)')
    parser.add_argument('--small-files', type=int, default=4000, help='files of 64 KiB (default 4000: 250 MiB)')
    parser.add_argument('--prepare-files', type=int, default=200_000)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument(
        '--workdir',
        default='/dev/shm',
        help="where the data and the tape images live (default: memory, so the disk's own noise "
        'does not decide the ratios)',
    )
    options = parser.parse_args()
    if os.geteuid() != 0:
        print('bench.pytarchive needs root: the virtual tape library loop-mounts its tapes', file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix='pytarchive-bench-', dir=options.workdir))
    rig = Rig(work)
    try:
        size = make_data(work / 'data', options.big_files, options.small_files)
        results = bench_archive_and_verify(rig, work / 'data', options.rounds)
        rig.resources.release()
        make_small_files(work / 'small', options.prepare_files)
        results['prepare'] = bench_prepare(rig, work / 'small', options.rounds)
    finally:
        rig.close()
        shutil.rmtree(work, ignore_errors=True)
    report = {
        name: {
            'pytarchive_s': round(ours, 3),
            'baseline_s': round(theirs, 3),
            'ratio': round(theirs / ours, 2),
            'aim': AIMS[name],
            'met': theirs / ours >= AIMS[name],
        }
        for name, (ours, theirs) in results.items()
    }
    report['archive']['bytes'] = report['verify']['bytes'] = size
    report['prepare']['files'] = options.prepare_files
    if options.json:
        print(json.dumps(report, indent=2))
        return 0
    baselines = {'archive': 'cp -a', 'verify': 'sha256sum', 'prepare': 'tar -c | zstd'}
    rows = [['step', 'pytarchive s', 'baseline', 'baseline s', 'ratio', 'aim', 'met']]
    for name, figures in report.items():
        rows.append(
            [
                name,
                f'{figures["pytarchive_s"]:.2f}',
                baselines[name],
                f'{figures["baseline_s"]:.2f}',
                f'{figures["ratio"]:.2f}',
                f'{figures["aim"]:.2f}',
                'yes' if figures['met'] else 'NO',
            ]
        )
    print(
        f'{size / MIB:.0f} MiB in {options.big_files + options.small_files} files for archive and verify; '
        f'{options.prepare_files} small files for prepare; best of {options.rounds}'
    )
    print_table(rows)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
