"""kill -9 of the service at each step boundary of an archive, then requeue: the task ends done, the
folder is archived exactly once, the catalog has one record and one checksum per file, and the tape
holds one copy and nothing else.

The boundaries are found from outside, as an admin's tools would see them: the task's step and the
folder's state in the database, the files the service has open, the ltfs daemon of the mount. The
service (and what it runs) is stopped with SIGSTOP the moment a boundary is reached, then killed.

- prepared: the task runs, the tape is being loaded, the folder is still only prepared;
- copied: every file is on tape with its checksum, the tape not yet unmounted;
- unmounted: the index is written (ltfs has exited), the tape not yet mounted again to be read;
- verified: everything but the last file has been read back, and that file is being read. Nothing
  persistent is written between the end of verification and the 'archived' mark, so a kill after
  verification leaves the same state as this one;
- archived: the folder is archived, the tape being unloaded, the task not yet done;
- done: the task is done.
"""

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from pytarchive import tapedesc
from pytarchive.library.processes import ltfs_processes
from tests.pytarchive.rig import TAPE, formatted_rig, make_tree, queued_id, snapshot

pytestmark = [pytest.mark.root, pytest.mark.slow]  # the virtual library mounts its tapes; each takes seconds to minutes

BIG = 'zz last.bin'  # the last file in manifest order: big, so that its copy and its reading take a while


def _folder(rig, path: Path) -> dict:
    rows = rig.query(
        'SELECT id, state, packed_checksum FROM folders WHERE path = ? ORDER BY id DESC LIMIT 1', (str(path),)
    )
    return dict(zip(('id', 'state', 'packed_checksum'), rows[0])) if rows else {}


def _task(rig, task_id: int) -> dict:
    state, step = rig.query('SELECT state, step FROM tasks WHERE id = ?', (task_id,))[0]
    return {'state': state, 'step': step}


def _all_copied(rig, folder: dict, packed: bool) -> bool:
    if folder.get('state') != 'archiving':
        return False
    if packed:
        return folder['packed_checksum'] is not None
    files, checksums = rig.query(
        "SELECT COUNT(*), COUNT(checksum) FROM manifest WHERE folder = ? AND kind = 'file'", (folder['id'],)
    )[0]
    return files == checksums


def _reached(rig, boundary: str, task_id: int, path: Path, on_tape: str, packed: bool) -> bool:
    task, folder = _task(rig, task_id), _folder(rig, path)
    if boundary == 'prepared':
        return task['state'] == 'running' and folder['state'] == 'prepared'
    if boundary == 'copied':
        return task['step'] == 'copying' and _all_copied(rig, folder, packed)
    if boundary == 'verified':
        last = on_tape if packed else os.path.join(on_tape, BIG)
        return task['step'] == 'verifying' and rig.reading(last) >= 0
    if boundary == 'archived':
        return task['state'] == 'running' and folder['state'] == 'archived'
    return task['state'] == 'done'


def _kill_at(rig, boundary: str, task_id: int, path: Path, on_tape: str, packed: bool) -> None:
    deadline = time.monotonic() + 120
    while not _reached(rig, boundary, task_id, path, on_tape, packed):
        assert time.monotonic() < deadline, (boundary, _task(rig, task_id), _folder(rig, path))
        time.sleep(0.002)
    rig.freeze()
    # Still at the boundary once stopped: the kill lands where the test says it does.
    assert _reached(rig, boundary, task_id, path, on_tape, packed), (boundary, _task(rig, task_id))
    rig.crash()


def _on_tape(rig, tmp_path: Path) -> set:
    """Every file and link on the tape (directories aside), read through explore: the tape mounted read-only."""
    exportfs = tmp_path / 'exportfs'
    exportfs.write_text('#!/bin/sh\nexit 0\n')
    exportfs.chmod(0o755)
    config = rig.config.read_text()
    rig.config.write_text(config + f'\n[Export]\nto = 10.1.0.0/16\nexportfs = {exportfs}\n')
    rig.stop()
    rig.start()
    folder = json.loads(rig.ok('deleteable', '--json'))[0]['path']
    task_id = queued_id(rig.ok('explore', folder))
    deadline = time.monotonic() + 60
    while not (rig.tasks()[task_id]['step'] or '').startswith('exported'):
        assert time.monotonic() < deadline, rig.tasks()[task_id]
        time.sleep(0.1)
    found = set()
    for parent, directories, files in os.walk(rig.mountpoint):
        for name in files + [d for d in directories if os.path.islink(os.path.join(parent, d))]:
            found.add(os.path.relpath(os.path.join(parent, name), rig.mountpoint))
    rig.ok('explore', '--stop')
    rig.wait_for({task_id: {'done'}})
    return found


# No 'unmounted' case: the real LTFS writes its index in milliseconds after umount, too short a
# moment to kill the service in reliably; 'copied' and 'verified' surround it.
CASES = [(boundary, False) for boundary in ('prepared', 'copied', 'verified', 'archived', 'done')]
CASES += [(boundary, True) for boundary in ('copied', 'verified', 'archived')]


@pytest.mark.parametrize('boundary, packed', CASES, ids=[f'{b}{"-packed" if p else ""}' for b, p in CASES])
def test_kill_at_each_step_of_archive_then_requeue_archives_exactly_once(make_rig, tmp_path, boundary, packed):
    rig = formatted_rig(make_rig, general='pack_threshold = 3' if packed else '')
    path = make_tree(tmp_path / 'crash test')
    with open(path / BIG, 'wb') as file:
        for _ in range(25):
            file.write(os.urandom(4 << 20))  # 100 MiB
    source = snapshot(path)
    rig.ok('prepare', str(path), '--wait')
    tape_path = str(path).lstrip('/') + ('.tar.zst' if packed else '')
    task_id = queued_id(rig.ok('archive', str(path), TAPE))

    _kill_at(rig, boundary, task_id, path, os.path.join(rig.mountpoint, tape_path), packed)
    if boundary == 'done':
        rig.start()
        task = rig.tasks()[task_id]
        refused = rig.client('requeue', str(task_id))
        assert refused.returncode == 1 and f'task {task_id} is done' in refused.stderr
    else:
        task = rig.restart_and_requeue(task_id, timeout=180)

    assert task['state'] == 'done', task
    assert f'{path} archived to {TAPE} as {tape_path} and verified: 5 files' in task['result']
    assert rig.query('SELECT state, tape, tape_path FROM folders WHERE path = ?', (str(path),)) == [
        ('archived', TAPE, tape_path)
    ]
    assert rig.query("SELECT COUNT(*), COUNT(DISTINCT path), COUNT(checksum) FROM manifest WHERE kind = 'file'") == [
        (5, 5, 0 if packed else 5)
    ]
    assert [row['path'] for row in json.loads(rig.ok('deleteable', '--json'))] == [str(path)]
    assert 'CRITICAL' not in rig.log.read_text()  # no "task failed" mail
    assert list(rig.scratch.iterdir()) == []
    assert rig.drive().barcode is None and not rig.mounted()
    summary = json.loads(rig.ok('summary', '--json'))
    tape = next(tape for tape in summary['tapes'] if tape['barcode'] == TAPE)
    assert tape['folders'] == 1 and tape['used'] > 100 << 20

    copies = _on_tape(rig, tmp_path)
    # One description of the one archive, and the catalog's copy, whatever step the kill cut short.
    described = {f'{tapedesc.DIRECTORY}/{name}' for name in ('000001.header.txt', '000001.manifest.tsv')}
    described |= {f'{tapedesc.DIRECTORY}/{name}' for name in (tapedesc.README_NAME, tapedesc.CATALOG_NAME)}
    if packed:
        assert copies == {tape_path} | described
    else:
        files = {os.path.join(tape_path, name) for name, entry in source.items() if entry[0] != 'dir'}
        assert copies == files | described


def test_kill_while_preparing_a_packed_folder_then_requeue_leaves_one_record_and_one_scratch_copy(make_rig, tmp_path):
    rig = make_rig(general='pack_threshold = 100')
    # The service's first run finds a tar that stops after 100 kB, as a host dies mid-pack: the
    # kill comes while the pack is surely half-written, however fast or loaded the machine.
    held = tmp_path / 'held'
    held.mkdir()
    started = held / 'started'
    (held / 'tar').write_text(
        f"#!/bin/sh\n'{shutil.which('tar')}' \"$@\" | {{ head -c 100000; : > '{started}'; exec sleep 600; }}\n"
    )
    (held / 'tar').chmod(0o755)
    rig.start(env=dict(os.environ, PATH=f'{held}:{os.environ["PATH"]}'))
    rig.ok('format', TAPE, '--wait')
    path = tmp_path / 'many small'
    for group in range(20):
        (path / f'group {group}').mkdir(parents=True)
        for index in range(400):
            (path / f'group {group}' / f'{index}.txt').write_text(f'{group}-{index}\n' * 20)
    task_id = queued_id(rig.ok('prepare', str(path)))
    rig.wait_until(started.exists)
    assert _task(rig, task_id)['step'] == 'listing and packing'
    rig.freeze()
    rig.crash()
    task = rig.restart_and_requeue(task_id)

    assert task['state'] == 'done' and 'prepared: 8000 files' in task['result'], task
    ((folder_id, state),) = rig.query('SELECT id, state FROM folders WHERE path = ?', (str(path),))
    assert state == 'prepared'
    assert rig.query("SELECT COUNT(*), COUNT(DISTINCT path) FROM manifest WHERE kind = 'file'") == [(8000, 8000)]
    assert sorted(os.listdir(rig.scratch)) == [f'pytarchive-{folder_id}.tar.zst']
    assert 'verified: 8000 files' in rig.ok('archive', str(path), TAPE, '--wait')


def test_a_file_edited_while_the_service_was_down_is_not_skipped_by_the_resumed_archive(make_rig, tmp_path):
    rig = formatted_rig(make_rig)
    path = make_tree(tmp_path / 'edited between runs')
    with open(path / BIG, 'wb') as file:
        file.write(os.urandom(50 << 20))
    rig.ok('prepare', str(path), '--wait')
    tape_path = str(path).lstrip('/')
    task_id = queued_id(rig.ok('archive', str(path), TAPE))
    _kill_at(rig, 'copied', task_id, path, os.path.join(rig.mountpoint, tape_path), False)
    edited = path / 'sub dir' / 'a file.bin'
    edited.write_bytes(os.urandom(300_000))  # same size, new bytes: copied before the kill, edited since
    task = rig.restart_and_requeue(task_id)

    assert task['state'] == 'failed', task
    assert f'{edited} changed since prepare' in task['error'] and 'NOT archived' in task['error']
    assert rig.ok('deleteable').startswith('nothing is archived')
    assert not any(path.startswith(tape_path) for path in rig.volume())  # the copy made before the kill went too


def test_kill_9_of_ltfs_mid_copy_then_requeue_runs_ltfsck_and_archives_what_it_dropped(make_rig, tmp_path):
    rig = formatted_rig(make_rig)
    path = tmp_path / 'cut short'
    path.mkdir()
    for index in range(10):
        (path / f'{index:02d}.bin').write_bytes(os.urandom(20 << 20))
    rig.ok('prepare', str(path), '--wait')
    task_id = queued_id(rig.ok('archive', str(path), TAPE))
    deadline = time.monotonic() + 60
    while True:  # frozen while it copies one of 02.bin-08.bin: files written, more to come
        rig.freeze()
        if any(rig.reading(path / f'{index:02d}.bin') >= 0 for index in range(2, 9)):
            break
        rig.thaw()
        assert time.monotonic() < deadline, rig.tasks()[task_id]
        time.sleep(0.002)
    for pid in ltfs_processes(rig.mountpoint):
        os.kill(pid, signal.SIGKILL)  # the drive's LTFS dies mid-write; its last index is the format's
    rig.thaw()
    failed = rig.wait_for({task_id: {'failed'}}, timeout=120)[task_id]
    assert f'(the ltfs process serving {TAPE} is gone: its next mount checks the volume)' in failed['error'], failed
    assert rig.drive().barcode is None and not rig.mounted()  # the dead mount undone, the tape put back

    task = _requeue(rig, task_id)
    assert task['state'] == 'done', task
    assert f'{path} archived to {TAPE}' in task['result'] and 'verified: 10 files' in task['result']
    assert 'LTFS11220E Medium check failed: extra blocks detected. Run ltfsck.' in task['result'] or (
        'LTFS17146E EOD of DP(1) is missing' in task['result']  # killed before the end of data was marked
    )
    assert 'ltfsck rolled it back to its last index' in task['result']
    tape_path = str(path).lstrip('/')
    on_volume = {name: size for name, size in rig.volume().items() if name.startswith(tape_path + '/')}
    manifest = dict(rig.query("SELECT path, size FROM manifest WHERE kind = 'file'"))
    assert on_volume == {f'{tape_path}/{name}': size for name, size in manifest.items()}
    assert 'Traceback' not in rig.log.read_text()


def _requeue(rig, task_id: int) -> dict:
    rig.ok('requeue', str(task_id))
    return rig.wait_for({task_id: {'done', 'failed'}}, timeout=180)[task_id]
