"""pytarchive's data paths against the standard tools, measured in the same run on the same disk:
sudo .venv/bin/python -m bench.pytarchive [--json] [--big-files N] [--small-files N] [--prepare-files N]
sudo .venv/bin/python -m bench.pytarchive --drives [--json] [--big-files N] [--small-files N] [--folders N]
sudo .venv/bin/python -m bench.pytarchive --import-only [--import-files N] [--rounds N]  (import: 5. below)

The tape is a cartridge of the virtual library (sim/tapelib): the reference LTFS (build/ltfs) with
its `file` backend, which keeps the cartridge's records as files in a folder of --workdir (on disk by
default, next to the source data), mounted by the real ltfs with pytarchive's own options
(Drive.mount: devname=DRIVE,sync_type=time@5).

1. archive: the archive task's copy step (archive._copy_tree: copy + BLAKE3 of every byte read +
   manifest rows) from a folder to a freshly formatted, mounted cartridge, against `cp -a` of the
   same folder to the same cartridge formatted afresh (the ceiling: the same LTFS, the same disk).
   Aim: at least 0.85 of cp's throughput.
2. verify: the archive task's verification step (archive.verify_tree: read back + BLAKE3, one file
   at a time, in manifest order) against `sha256sum` of the same files in the same order, both over
   pytarchive's copy of that round, each after its own read-only mount. Aim: at least 0.9.
3. prepare: the prepare task on --prepare-files small files (walk, manifest, tar | zstd streamed),
   against `tar -c | zstd` (zstd's defaults) of the same folder. Aim: at least 0.8.
(4. find and 5. import: see bench_find and bench_import.)

What is timed, identically for both sides:
- archive: from the start of the copy until the data is on the cartridge: the copy, then
  Drive.unmount (umount, then waiting for the ltfs process to exit: the index written to both
  partitions), then sync(2) (the cartridge's record files on the disk). Mounting the freshly
  formatted cartridge is not timed.
- verify: reading every file (mounted read-only just before, not timed), so every byte comes from the
  cartridge's records, none from what LTFS kept from the writes.
- Before every timed archive and verify step: sync(2) (no writeback of the previous step left to
  land on this one), then `echo 3 > /proc/sys/vm/drop_caches`: the source data and the cartridge are
  read from the disk by both sides alike. The prepare steps start after a sync, caches warm.
Each figure is the best of --rounds; the two sides alternate which goes first from round to round.

--drives, alone: the archive task whole (load, mount, copy, read-back, unload: archive.run through the
queue's Consumer), --folders folders of --big-files and --small-files each to as many freshly
formatted cartridges, with one drive (one after another) against two drives (at once), both in a
library of two drives, in the same run. Timed from the first claim to the last archive done, after
a sync and a drop of the page cache; formatting and prepare are not timed. Aim: two drives at least
1.7 times the throughput of one.
pytarchive's database lives in /dev/shm, as /var/lib/pytarchive is never on the tape's disk.
Needs root (FUSE mounts, drop_caches).
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
from pytarchive import config as configuration, tapedesc
from pytarchive.client.protocol import DONE, ENDED
from pytarchive.resources import for_drives
from pytarchive.state import catalog, folders, tapes
from pytarchive.state.db import Database
from pytarchive.taskqueue import Consumer, TaskContext, TaskStorage
from pytarchive.tasks import REGISTRY, archive, prepare, tapeimport
from pytarchive.walk import FILE

PROJECT = Path(__file__).resolve().parent.parent

AIMS = {'archive': 0.85, 'verify': 0.9, 'prepare': 0.8}
DRIVES_AIM = 1.7  # two drives against one, archives to separate cartridges
TAPE = 'TPN001L9'
MIB = 1 << 20
DROP_CACHES = Path('/proc/sys/vm/drop_caches')


def settle() -> None:
    """No dirty pages pending, and no cached pages: what is read next comes from the disk."""
    os.sync()
    DROP_CACHES.write_text('3\n')


def timed(function, settled: bool = True) -> float:
    """Seconds the call took; settled: started from a flushed, empty page cache (else just flushed)."""
    if settled:
        settle()
    else:
        os.sync()
    start = time.perf_counter()
    function()
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
    """A virtual library (one tape, one drive unless told), a config for it and pytarchive's own objects."""

    def __init__(self, work: Path, capacity: str, drives: int = 1, barcodes: tuple = (TAPE,)):
        self.work = work
        self.library = work / 'library'
        init = subprocess.run(
            [sys.executable, '-m', 'sim.tapelib', 'init', str(self.library), '--slots', str(len(barcodes) + 3)]
            + ['--drives', str(drives), '--tapes', ','.join(barcodes), '--capacity', capacity],
            cwd=PROJECT,
            capture_output=True,
            text=True,
        )
        if init.returncode != 0:
            raise SystemExit(f'bench.pytarchive: sim.tapelib init failed: {init.stderr.strip()}')
        # The database off the disk being measured, as /var/lib/pytarchive is never on the tape.
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
        self.all_resources = for_drives(self.config, self.db)  # one per drive, sharing the changer
        self.resources = self.all_resources[0]
        self.drive = self.resources.drive
        self.mountpoint = Path(self.resources.mountpoint)

    def context(self, kind: str, **args) -> TaskContext:
        return TaskContext(self.storage.enqueue(kind, args), self.resources, self.storage, threading.Event())

    def fresh_tape(self) -> None:
        """The cartridge in the drive erased (mkltfs -f writes a new, empty volume) and mounted read-write."""
        self.drive.unmount()
        self.drive.format(volume_serial=TAPE[:6], name=TAPE, force=True)
        self.drive.mount()

    def on_tape(self) -> None:
        """Until the data is on the cartridge: umount, the ltfs process gone (its index written), synced."""
        self.drive.unmount()
        os.sync()

    def mounted_read_only(self) -> None:
        self.drive.unmount()
        self.drive.mount(read_only=True)

    def close(self) -> None:
        try:
            for resources in self.all_resources:
                resources.release()
        finally:
            self.db.close()
            self.state.cleanup()
            subprocess.run(
                [sys.executable, '-m', 'sim.tapelib', 'cleanup', str(self.library)], cwd=PROJECT, capture_output=True
            )


def bench_archive_and_verify(rig: Rig, source: Path, rounds: int) -> dict:
    prepare.run(rig.context('prepare', path=str(source)), str(source))
    folder = folders.latest(rig.db, str(source), (folders.PREPARED,))
    assert not folder['packed'], 'the archive data must stay a tree of files (below pack_threshold)'
    rig.resources.load(TAPE)
    on_tape = rig.mountpoint / 'copy'
    listing = rig.work / 'files.txt'  # the files in manifest order, the order verify_tree reads them in
    listing.write_text(
        '\0'.join(str(on_tape / row['path']) for row in folders.entries(rig.db, folder['id'], kind=FILE))
    )

    def archive_ours(ctx):
        archive._copy_tree(ctx, folder, str(on_tape), False)
        rig.on_tape()

    def archive_theirs():
        shell(f'cp -a "{source}" "{on_tape}"')
        rig.on_tape()

    def verify_ours(ctx):
        bad = archive.verify_tree(ctx, folders.get(rig.db, folder['id']), str(on_tape))
        assert not bad, bad[:3]

    def verify_theirs():
        shell(f'xargs -0 sha256sum < "{listing}"')

    archived, verified = ([], []), ([], [])  # (pytarchive's seconds, the baseline's)
    for number in range(rounds):
        order = (0, 1) if number % 2 else (1, 0)  # 0: pytarchive, 1: the baseline
        ctx = rig.context('archive', path=str(source), barcode=TAPE)
        for side in order:
            rig.fresh_tape()
            archived[side].append(timed(lambda: archive_ours(ctx) if side == 0 else archive_theirs()))
            if side == 0:  # both sides verify pytarchive's copy, each after a read-only mount of its own
                for reader in order:
                    rig.mounted_read_only()
                    verified[reader].append(timed(lambda: verify_ours(ctx) if reader == 0 else verify_theirs()))
                rig.drive.unmount()
    return {'archive': archived, 'verify': verified}


def bench_prepare(rig: Rig, source: Path, rounds: int) -> tuple:
    config = rig.resources.config  # packed, as a folder of this many files would be with a lower threshold
    rig.resources.config = dataclasses.replace(config, general=dataclasses.replace(config.general, pack_threshold=1000))
    ours, theirs = [], []
    for _ in range(rounds):
        output = rig.work / 'baseline.tar.zst'
        theirs.append(timed(lambda: shell(f'tar -c -C "{source}" . | zstd -q -o "{output}" -f'), settled=False))
        output.unlink()
        ctx = rig.context('prepare', path=str(source))
        ours.append(timed(lambda: prepare.run(ctx, str(source)), settled=False))
    return ours, theirs


def drive_barcodes(folders_count: int) -> tuple:
    return tuple(f'TPN{number:03d}L9' for number in range(1, folders_count + 1))


class Load:
    """How busy the machine was over a stretch: the CPUs (in cores, of os.cpu_count(): every process,
    other users' too), the cores pytarchive's own process used (its threads: copy, BLAKE3, read-back;
    ltfs runs apart) and the disk holding a path (its share of the time with I/O in flight): what
    bounds the drives figure when the "drives" are files on one disk of a small machine."""

    def __init__(self, path: Path):
        device = os.stat(path).st_dev
        self.disk = Path(f'/sys/dev/block/{os.major(device)}:{os.minor(device)}/stat')
        self.start = self._read()

    def _read(self) -> tuple:
        with open('/proc/stat') as stat:
            ticks = [int(value) for value in stat.readline().split()[1:9]]
        io_ms = int(self.disk.read_text().split()[9]) if self.disk.exists() else 0
        own = os.times()
        return time.perf_counter(), sum(ticks), ticks[3] + ticks[4], io_ms, own.user + own.system

    def busy(self) -> dict:
        """{'cpu_cores': cores busy on average, 'own_cores': of them pytarchive's process,
        'disk_pct': percent of the time the disk was busy}."""
        end = self._read()
        seconds, total, idle, io_ms, own = (after - before for after, before in zip(end, self.start))
        cores = (total - idle) / total * (os.cpu_count() or 1) if total else 0.0
        return {
            'cpu_cores': round(cores, 2),
            'own_cores': round(own / seconds, 2) if seconds else 0.0,
            'disk_pct': round(100 * io_ms / 1000 / seconds, 1) if seconds else 0.0,
        }


def archive_with_drives(rig: Rig, drives: int, sources: list, barcodes: tuple) -> tuple:
    """(seconds, Load.busy()) of the queue archiving each source to its own fresh cartridge with this
    many drives."""
    for barcode in barcodes:  # erased and formatted afresh, not timed
        with rig.resources.tape_loaded(barcode) as slot:
            rig.drive.format(volume_serial=barcode[:6], name=barcode, force=True)
            tapes.record_formatted(rig.db, barcode, slot)
    for source in sources:  # a prepare again: the next archive is a new copy (not timed)
        ctx = rig.context('prepare', path=str(source))
        prepare.run(ctx, str(source))
        rig.storage.cancel([ctx.task.id], 'the bench')  # run here already: not one for the Consumer
    settle()
    ids = [rig.storage.enqueue('archive', {'path': str(s), 'barcode': b}).id for s, b in zip(sources, barcodes)]
    consumer = Consumer(rig.storage, REGISTRY, rig.all_resources[:drives])
    load = Load(rig.work)
    start = time.perf_counter()
    consumer.start()
    try:
        while not all(rig.storage.get(task_id).state in ENDED for task_id in ids):
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        busy = load.busy()
    finally:
        consumer.stop()
    failed = [task for task in map(rig.storage.get, ids) if task.state != DONE]
    if failed:
        raise SystemExit(f'bench.pytarchive: archive task {failed[0].id} {failed[0].state}: {failed[0].error}')
    return seconds, busy


def bench_drives(options: argparse.Namespace, work: Path) -> dict:
    barcodes = drive_barcodes(options.folders)
    rig = Rig(work, options.capacity, drives=2, barcodes=barcodes)
    try:
        sources = []
        for number in range(options.folders):
            sources.append(work / f'folder{number}')
            size = make_data(sources[-1], options.big_files, options.small_files)
        rounds: dict = {1: [], 2: []}  # drives -> (seconds, busy) of each round
        for number in range(options.rounds):
            for drives in (1, 2) if number % 2 == 0 else (2, 1):
                rounds[drives].append(archive_with_drives(rig, drives, sources, barcodes))
    finally:
        rig.close()
    total = size * options.folders
    (one, one_busy), (two, two_busy) = min(rounds[1], key=lambda r: r[0]), min(rounds[2], key=lambda r: r[0])
    seconds = {drives: [r[0] for r in rounds[drives]] for drives in rounds}
    return {
        'folders': options.folders,
        'bytes': total,
        'one_drive_s': round(one, 3),
        'two_drives_s': round(two, 3),
        'one_drive_mib_s': round(total / MIB / one, 1),
        'two_drives_mib_s': round(total / MIB / two, 1),
        'ratio': round(one / two, 2),
        'aim': DRIVES_AIM,
        'met': one / two >= DRIVES_AIM,
        'busy': {'one_drive': one_busy, 'two_drives': two_busy},  # of the best rounds
        'rounds_s': {'one_drive': [round(t, 3) for t in seconds[1]], 'two_drives': [round(t, 3) for t in seconds[2]]},
    }


def print_drives(result: dict, as_json: bool, rounds: int) -> None:
    if as_json:
        print(json.dumps({'drives': result, 'rounds': rounds}, indent=2))
        return
    print(
        f'{result["folders"]} folders, {result["bytes"] / MIB:.0f} MiB in all, each archived to its own '
        f'cartridge (the archive task whole); best of {rounds}'
    )
    one, two = result['busy']['one_drive'], result['busy']['two_drives']
    cores = os.cpu_count()
    print_table(
        [
            [
                'drives',
                'seconds',
                'MiB/s',
                f'cores busy (of {cores})',
                'pytarchive',
                'disk busy',
                'ratio',
                'aim',
                'met',
            ],
            [
                '1',
                f'{result["one_drive_s"]:.2f}',
                f'{result["one_drive_mib_s"]:.1f}',
                f'{one["cpu_cores"]:.2f}',
                f'{one["own_cores"]:.2f}',
                f'{one["disk_pct"]:.0f}%',
                '1.00',
                '-',
                '-',
            ],
            [
                '2',
                f'{result["two_drives_s"]:.2f}',
                f'{result["two_drives_mib_s"]:.1f}',
                f'{two["cpu_cores"]:.2f}',
                f'{two["own_cores"]:.2f}',
                f'{two["disk_pct"]:.0f}%',
                f'{result["ratio"]:.2f}',
                f'{result["aim"]:.2f}',
                'yes' if result['met'] else 'NO',
            ],
        ]
    )


FIND_FOLDERS = 1000
FIND_AIM_S = 1.0


def bench_find(rows: int, workdir: Path) -> dict:
    """4. find: `pytarchive find` (catalog.find) of a substring that matches one file among `rows`
    manifest rows in 1,000 archived folders, against grep -F of the same substring over the same
    full paths listed in a text file (what an admin would do with an exported list). Aim: under
    1 s (the issue's), and the ratio to grep printed."""
    work = Path(tempfile.mkdtemp(prefix='pytarchive-find-', dir=workdir))
    try:
        db = Database(str(work / 'catalog.db'))
        per_folder = rows // FIND_FOLDERS
        started = time.perf_counter()
        with open(work / 'paths.txt', 'w') as listing:
            for folder in range(FIND_FOLDERS):
                path = f'/data/projects/survey {folder:04d}'
                names = [f'site {n % 50:02d}/camera {n % 7}/frame{n:08d}.tif' for n in range(per_folder)]
                with db.transaction() as conn:
                    conn.execute("INSERT OR IGNORE INTO tapes (barcode) VALUES ('TPN001L9')")
                    folder_id = conn.execute(
                        "INSERT INTO folders (path, tape, state, created) VALUES (?, 'TPN001L9', 'archived', ?)",
                        (path, '2026-01-01T00:00:00+00:00'),
                    ).lastrowid
                    conn.executemany(
                        "INSERT INTO manifest (folder, path, kind, size, mtime, checksum) VALUES (?, ?, 'file', 1, 0, ?)",
                        ((folder_id, name, '0' * 64) for name in names),
                    )
                listing.writelines(f'{path}/{name}\n' for name in names)
        built = time.perf_counter() - started
        wanted = f'survey 0777/site {(per_folder - 1) % 50:02d}/camera {(per_folder - 1) % 7}/frame{per_folder - 1:08d}'
        finds, greps = [], []
        for _ in range(3):
            begun = time.perf_counter()
            found, _ = catalog.find(db, wanted.upper(), 100)
            finds.append(time.perf_counter() - begun)
            begun = time.perf_counter()
            grep = subprocess.run(['grep', '-F', '-i', wanted, str(work / 'paths.txt')], capture_output=True, text=True)
            greps.append(time.perf_counter() - begun)
        assert len(found) == 1 and grep.stdout.count('\n') == 1, (found, grep.stdout[:200])
        db.close()
        return {'rows': per_folder * FIND_FOLDERS, 'build_s': built, 'find_s': min(finds), 'grep_s': min(greps)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_find(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    print(
        f'find: a substring among {result["rows"]:,} manifest rows in {result["find_s"]:.2f} s '
        f'(aim < {FIND_AIM_S:g} s: {"met" if result["find_s"] < FIND_AIM_S else "NOT met"}); '
        f'grep -F -i over the same paths as text: {result["grep_s"]:.2f} s, ratio {result["find_s"] / result["grep_s"]:.2f} '
        f'(catalog built in {result["build_s"]:.0f} s)'
    )


IMPORT_AIM = 2.0


def bench_import(rig: Rig, files: int, rounds: int) -> dict:
    """5. import: `pytarchive import`'s work on a mounted tape (tapeimport.import_mounted: read the
    description, check the manifest's checksum, parse it, record the archive and its `files` manifest
    rows in an empty catalog) against reading the same manifest file off the same volume (`cat` to
    nowhere, in Python). Each side on a fresh read-only mount after the page cache was dropped, so
    both read the cartridge's records from the disk. Aim: at most 2x the read (the issue's)."""
    source = Database(f'{rig.state.name}/source.db')
    with source.transaction() as conn:
        conn.execute('INSERT INTO tapes (barcode) VALUES (?)', (TAPE,))
        folder_id = conn.execute(
            'INSERT INTO folders (path, description, tape, tape_path, state, created, file_count, source_bytes) '
            "VALUES ('/data/projects/survey', 'bench', ?, 'data/projects/survey', 'archived', ?, ?, ?)",
            (TAPE, '2026-01-01T00:00:00+00:00', files, files * 4096),
        ).lastrowid
        conn.executemany(
            'INSERT INTO manifest (folder, path, kind, size, mtime, mode, uid, gid, checksum) '
            "VALUES (?, ?, 'file', 4096, ?, 420, 1000, 1000, ?)",
            (
                (folder_id, f'site {n % 50:02d}/camera {n % 7}/frame{n:08d}.tif', 1.7e9 + n / 7, f'{n:064x}')
                for n in range(files)
            ),
        )
    rig.resources.load(TAPE)
    rig.fresh_tape()
    folder = folders.get(source, folder_id)
    written = tapedesc.write(str(rig.mountpoint), folder, folders.entries(source, folder_id))
    rig.on_tape()
    source.close()
    [manifest] = [path for path in written if path.endswith(tapedesc.MANIFEST_SUFFIX)]
    manifest_path = rig.mountpoint / manifest
    size = 0

    def read_manifest():
        nonlocal size
        with open(manifest_path, 'rb') as file:
            size = len(file.read())

    def import_it(round_number):
        db = Database(f'{rig.state.name}/import-{round_number}.db')
        with db.transaction() as conn:
            conn.execute('INSERT INTO tapes (barcode) VALUES (?)', (TAPE,))
        said = tapeimport.import_mounted(db, str(rig.mountpoint), TAPE)
        assert f'1 archives imported ({files} files' in said, said
        db.close()

    def read_from_the_shelf():  # what a person does: load the tape, mount it, read the manifest
        with rig.resources.tape_mounted(TAPE, read_only=True):
            read_manifest()

    def import_from_the_shelf():  # the import task whole: load, mount, import, unmount, unload
        with rig.db.transaction() as conn:  # what an earlier round imported
            conn.execute('DELETE FROM folders WHERE tape = ?', (TAPE,))
        settle()
        began = time.perf_counter()
        said = tapeimport.run(rig.context('import', barcode=TAPE), TAPE)
        assert f'1 archives imported ({files} files' in said, said
        return time.perf_counter() - began

    figures = {name: [] for name in ('read_s', 'import_s', 'task_read_s', 'task_s')}
    for round_number in range(rounds):
        sides = [
            ('read_s', lambda: (rig.mounted_read_only(), timed(read_manifest))[1]),
            ('import_s', lambda: (rig.mounted_read_only(), timed(lambda: import_it(round_number)))[1]),
        ]
        for name, side in sides if round_number % 2 == 0 else reversed(sides):
            figures[name].append(side())
        rig.resources.release()  # the tape back on its shelf for the whole-task figures
        sides = [('task_read_s', lambda: timed(read_from_the_shelf)), ('task_s', import_from_the_shelf)]
        for name, side in sides if round_number % 2 == 0 else reversed(sides):
            figures[name].append(side())
        rig.resources.load(TAPE)
    rig.drive.unmount()
    return {'entries': files, 'manifest_bytes': size, **figures}


def print_import(result: dict, as_json: bool) -> None:
    best = {name: min(result[name]) for name in ('read_s', 'import_s', 'task_read_s', 'task_s')}
    mounted, whole = best['import_s'] / best['read_s'], best['task_s'] / best['task_read_s']
    figures = {
        'entries': result['entries'],
        'manifest_bytes': result['manifest_bytes'],
        **{name: round(seconds, 3) for name, seconds in best.items()},
        'ratio_mounted': round(mounted, 2),
        'ratio_task': round(whole, 2),
        'aim': IMPORT_AIM,
        'met': whole <= IMPORT_AIM,
        'rounds_s': {name: [round(t, 3) for t in result[name]] for name in best},
    }
    if as_json:
        print(json.dumps({'import': figures}, indent=2))
        return
    print(
        f'import of a tape describing a {result["entries"]:,}-entry archive ({result["manifest_bytes"] / MIB:.1f} MiB '
        f'manifest), best of {len(result["read_s"])}:\n'
        f'  from the shelf: the import task (load, mount, import, unload) {best["task_s"]:.2f} s against loading, '
        f'mounting and reading the manifest {best["task_read_s"]:.2f} s: ratio {whole:.2f} '
        f'(aim <= {IMPORT_AIM:g}: {"met" if figures["met"] else "NOT met"})\n'
        f'  on the mounted volume: import {best["import_s"]:.2f} s against reading the manifest '
        f'{best["read_s"]:.2f} s: ratio {mounted:.2f}'
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', action='store_true')
    parser.add_argument('--big-files', type=int, default=32, help='files of 32 MiB (default 32: 1 GiB)')
    parser.add_argument('--small-files', type=int, default=4000, help='files of 64 KiB (default 4000: 250 MiB)')
    parser.add_argument('--prepare-files', type=int, default=200_000)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument(
        '--capacity',
        default='4G',
        help='per cartridge (default 4G; it takes disk space only for what is written)',
    )
    parser.add_argument(
        '--workdir',
        default='/var/tmp',
        help='where the data and the cartridge live, on one disk (default /var/tmp)',
    )
    parser.add_argument(
        '--find-rows', type=int, default=10_000_000, help='manifest rows of the find figure (default 10 million)'
    )
    parser.add_argument('--find-only', action='store_true', help='only the find figure (needs no root)')
    parser.add_argument(
        '--drives', action='store_true', help='only the drives figure: archives with two drives against one'
    )
    parser.add_argument('--folders', type=int, default=2, help='--drives: folders, one cartridge each (default 2)')
    parser.add_argument('--import-only', action='store_true', help='only the import figure (root)')
    parser.add_argument('--import-files', type=int, default=100_000, help='manifest entries of the import figure')
    options = parser.parse_args()
    if options.find_only:
        print_find(bench_find(options.find_rows, Path(options.workdir)), options.json)
        return 0
    if os.geteuid() != 0:
        print('bench.pytarchive needs root: it mounts LTFS (FUSE) and drops the page cache', file=sys.stderr)
        return 1
    if options.import_only:
        work = Path(tempfile.mkdtemp(prefix='pytarchive-bench-', dir=options.workdir))
        try:
            rig = Rig(work, options.capacity)
            try:
                print_import(bench_import(rig, options.import_files, options.rounds), options.json)
            finally:
                rig.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix='pytarchive-bench-', dir=options.workdir))
    if options.drives:
        try:
            print_drives(bench_drives(options, work), options.json, options.rounds)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    try:
        rig = Rig(work, options.capacity)
        try:
            size = make_data(work / 'data', options.big_files, options.small_files)
            results = bench_archive_and_verify(rig, work / 'data', options.rounds)
            rig.resources.release()
            make_small_files(work / 'small', options.prepare_files)
            results['prepare'] = bench_prepare(rig, work / 'small', options.rounds)
        finally:
            rig.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {}
    for name, (ours_all, theirs_all) in results.items():  # seconds of every round, in order
        ours, theirs = min(ours_all), min(theirs_all)
        report[name] = {
            'pytarchive_s': round(ours, 3),
            'baseline_s': round(theirs, 3),
            'ratio': round(theirs / ours, 2),
            'aim': AIMS[name],
            'met': theirs / ours >= AIMS[name],
            'rounds_s': {'pytarchive': [round(t, 3) for t in ours_all], 'baseline': [round(t, 3) for t in theirs_all]},
        }
        if name != 'prepare':
            report[name]['bytes'] = size
            report[name]['pytarchive_mib_s'] = round(size / MIB / ours, 1)
            report[name]['baseline_mib_s'] = round(size / MIB / theirs, 1)
    report['prepare']['files'] = options.prepare_files
    elapsed = time.perf_counter() - started
    if options.json:
        print(json.dumps({**report, 'rounds': options.rounds, 'run_s': round(elapsed, 1)}, indent=2))
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
        f'{size / MIB:.0f} MiB in {options.big_files + options.small_files} files for archive and verify '
        f'(LTFS cartridge in {options.workdir}); {options.prepare_files} small files for prepare; '
        f'best of {options.rounds}; run took {elapsed:.0f} s'
    )
    print_table(rows)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
