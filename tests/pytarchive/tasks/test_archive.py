"""prepare, archive, restore, deleteable and summary end to end: the service on the virtual library.

Each test formats a tape through the service, then drives the workflow with the client as an admin
would (`--wait` follows a task to its end) and checks what lands on the tape, in the database's
reports and back on disk.
"""

import contextlib
import json
import os
import re
import sqlite3
import time
from pathlib import Path

import pytest

from tests.pytarchive.rig import TAPE, archived, formatted_rig, make_tree, queued_id, sim_fault, snapshot

pytestmark = [pytest.mark.root, pytest.mark.slow]  # the virtual library mounts its tapes; each takes seconds to minutes


def test_archive_verify_then_restore_reproduces_the_folder(make_rig, tmp_path):
    rig = formatted_rig(make_rig)
    folder = make_tree(tmp_path / 'projects' / 'Q3 report')
    before = snapshot(folder)

    prepared = rig.ok('prepare', str(folder), 'quarterly report', '--wait')
    assert f'{folder} prepared: 4 files' in prepared
    result = archived(rig, folder)
    assert 'verified' in result and TAPE in result

    deleteable = rig.ok('deleteable')
    assert str(folder) in deleteable and TAPE in deleteable and 'safe to delete by hand' in deleteable
    rows = json.loads(rig.ok('deleteable', '--json'))
    assert [(row['path'], row['tape'], row['file_count']) for row in rows] == [(str(folder), TAPE, 4)]
    assert snapshot(folder) == before  # pytarchive never touches the originals

    # What a tape admin asks: which tape holds this file, what is on this tape, every archive of a folder.
    found = rig.ok('find', 'DEEPER/small')
    assert f'{folder}/sub dir/deeper/small.txt' in found and TAPE in found and '1 entries' in found
    [entry] = json.loads(rig.ok('find', '*/deeper/*.txt', '--json'))['entries']
    assert (entry['tape'], entry['state'], entry['size'], len(entry['checksum'])) == (TAPE, 'archived', 6, 64)
    assert rig.client('find', 'no such name').stdout.strip() == 'nothing in the catalog matches'
    on_tape = rig.ok('ls', TAPE)
    assert str(folder) in on_tape and f'{TAPE}: 1 archived folders' in on_tape
    inside = rig.ok('ls', str(folder), 'sub dir')
    assert 'sub dir/deeper/small.txt' in inside and 'données' not in inside
    history = rig.ok('history', str(folder)).splitlines()
    assert history[0].split()[:4] == ['RECORD', 'COPY', 'STATE', 'TAPE']
    assert history[1].split()[1:4] == ['1', 'archived', TAPE]
    refused = rig.client('ls', 'TPN777L9')
    assert refused.returncode == 1 and 'TPN777L9: no such tape in the catalog' in refused.stderr

    summary = json.loads(rig.ok('summary', '--json'))
    tape = next(tape for tape in summary['tapes'] if tape['barcode'] == TAPE)
    assert tape['folders'] == 1 and tape['used'] > 300_000 and tape['free'] == tape['capacity'] - tape['used']
    assert all(drive['tape'] is None for drive in summary['drives'])  # the drive is left empty after every task
    assert summary['folders'] == {'archived': 1}
    text = rig.ok('summary')
    assert 'FOLDERS' in text and 'drive 0 (serial ' in text and 'empty' in text

    restored = tmp_path / 'restored'
    out = rig.ok('restore', str(folder), '--to', str(restored), '--wait')
    assert f'restored from {TAPE} to {restored}: 6 written, 0 overwritten, 0 skipped (already identical), ' in out
    assert snapshot(restored) == before
    assert not rig.mounted() and rig.drive().barcode is None


def test_restore_refuses_to_overwrite_without_force_and_only_restores_a_part(make_rig, tmp_path):
    rig = formatted_rig(make_rig)
    folder = make_tree(tmp_path / 'data')
    archived(rig, folder)
    before = snapshot(folder)
    (folder / 'sub dir' / 'deeper' / 'small.txt').write_text('edited after archiving\n')

    refused = rig.client('restore', str(folder), '--wait')
    assert refused.returncode == 1
    assert 'files already exist in' in refused.stderr and '--force' in refused.stderr
    assert (folder / 'sub dir' / 'deeper' / 'small.txt').read_text() == 'edited after archiving\n'

    rig.ok('restore', str(folder), '--only', 'sub dir/deeper', '--force', '--wait')
    assert (folder / 'sub dir' / 'deeper' / 'small.txt').read_text() == 'small\n'
    assert snapshot(folder) == before

    only_one = tmp_path / 'one file'
    rig.ok('restore', str(folder), '--only', 'données été.txt', '--to', str(only_one), '--wait')
    assert [path.name for path in only_one.iterdir()] == ['données été.txt']
    # The full path of a part, as the admin sees it on disk, is the same part.
    by_full_path = tmp_path / 'by full path'
    rig.ok('restore', str(folder), '--only', str(folder / 'données été.txt'), '--to', str(by_full_path), '--wait')
    assert [path.name for path in by_full_path.iterdir()] == ['données été.txt']

    missing = rig.client('restore', str(folder), '--only', 'no such thing', '--wait')
    assert missing.returncode == 1 and 'no such thing is not in the archive' in missing.stderr

    # A link where the archive has a folder is never written through, --force or not.
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    linked = tmp_path / 'linked'
    (linked / 'sub dir').parent.mkdir()
    (linked / 'sub dir').symlink_to(elsewhere)
    refused = rig.client('restore', str(folder), '--to', str(linked), '--force', '--wait')
    assert refused.returncode == 1 and 'sub dir in ' in refused.stderr and 'is in the way' in refused.stderr
    assert list(elsewhere.iterdir()) == []

    # Into the original place, where everything is as archived: nothing to write, so the tape stays home.
    loads = len(rig.log.read_text().split('loading'))
    nothing = rig.ok('restore', str(folder), '--wait')
    assert 'nothing to restore, all 6 files and links are already in' in nothing
    assert '(0 written, 0 overwritten, 6 skipped); the tape was not loaded' in nothing
    assert len(rig.log.read_text().split('loading')) == loads and snapshot(folder) == before
    # With --force, only what differs is rewritten, and counted as such.
    (folder / 'sub dir' / 'deeper' / 'small.txt').write_text('edited again\n')
    forced = rig.ok('restore', str(folder), '--force', '--wait')
    assert ': 0 written, 1 overwritten, 5 skipped (already identical), 6 B written, verified' in forced
    assert snapshot(folder) == before

    under_a_file = rig.client('restore', str(folder), '--to', str(folder / 'zero' / 'inside'), '--wait')
    assert under_a_file.returncode == 1 and under_a_file.stderr.count('\n') == 1
    assert 'restore stopped: ' in under_a_file.stderr and 'Not a directory' in under_a_file.stderr
    assert rig.drive().barcode is None and not rig.mounted()


def test_packed_folder_round_trip(make_rig, tmp_path):
    rig = formatted_rig(make_rig, general='pack_threshold = 3')
    folder = make_tree(tmp_path / 'many files')
    before = snapshot(folder)
    prepared = rig.ok('prepare', str(folder), '--wait')
    assert 'packed into' in prepared and str(rig.scratch) in prepared
    assert 'verified' in archived_again(rig, folder)
    assert list(rig.scratch.iterdir()) == []  # the scratch copy goes once it is verified on tape

    restored = tmp_path / 'unpacked'
    rig.ok('restore', str(folder), '--to', str(restored), '--wait')
    assert snapshot(restored) == before
    assert not any(name.startswith('.pytarchive') for name in os.listdir(restored))

    part = tmp_path / 'part'
    rig.ok('restore', str(folder), '--to', str(part), '--only', 'sub dir', '--wait')
    assert sorted(str(p.relative_to(part)) for p in part.rglob('*')) == [
        'sub dir',
        'sub dir/a file.bin',
        'sub dir/deeper',
        'sub dir/deeper/small.txt',
    ]


def archived_again(rig, folder: Path) -> str:
    return rig.ok('archive', str(folder), TAPE, '--wait')


def test_archive_refuses_unprepared_folders_and_folders_that_do_not_fit(make_rig, tmp_path):
    rig = formatted_rig(make_rig, capacity=160 << 20)
    folder = tmp_path / 'big'
    folder.mkdir()
    unprepared = rig.client('archive', str(folder), TAPE)
    assert unprepared.returncode == 1 and 'is not prepared' in unprepared.stderr

    (folder / 'large.bin').write_bytes(b'\0' * 140_000_000)  # fits in 148 MiB, not with the index and reserve
    rig.ok('prepare', str(folder), '--wait')
    refused = rig.client('archive', str(folder), TAPE, '--wait')
    assert refused.returncode == 1
    # 140 MB of data, 32 MiB of reserve, the index, the description and the catalog's copy
    assert re.search(r'needs 17\d\.\d MB on tape but TPN001L9 has only', refused.stderr), refused.stderr
    assert 'nothing written' in refused.stderr
    assert f'or name several to archive it in parts ({TAPE},TAPE2,...)' in refused.stderr
    assert rig.ok('deleteable').startswith('nothing is archived')

    gone = tmp_path / 'gone'
    gone.mkdir()
    (gone / 'file').write_text('x')
    rig.ok('prepare', str(gone), '--wait')
    (gone / 'file').unlink()
    gone.rmdir()
    (gone.parent / 'a-file').write_text('not a folder')
    for bad, message in (
        (['archive', str(gone), TAPE], 'no such folder any more (it was prepared'),
        (['prepare', 'relative/path'], 'is not a full path'),
        (['prepare', str(tmp_path / 'absent')], 'no such folder'),
        (['archive', str(folder), 'CLN001L1'], 'cleaning tape'),
        (['restore', str(tmp_path / 'absent')], 'has no verified archive'),
        (['explore', str(folder)], '[Export] to is not set'),
        (['archive', str(folder), 'TPN999L9'], 'TPN999L9 is not in the library (it holds CLN001L1, TPN001L9'),
        (['format', 'TPN999L9'], 'TPN999L9 is not in the library'),
        (['check', 'TPN999L9'], 'put the tape in a slot, or check the barcode'),
        (['restore', str(folder), '--to', str(gone.parent / 'a-file')], 'not a folder (restore writes into a folder'),
        (['restore', str(folder), '--only', '/etc/passwd'], f'--only /etc/passwd: not inside {folder}'),
    ):
        done = rig.client(*bad)
        assert done.returncode == 1 and message in done.stderr and done.stderr.count('\n') == 1, done.stderr


def test_a_flipped_byte_on_tape_fails_verification_naming_the_file(make_rig, tmp_path):
    rig = formatted_rig(make_rig)
    folder = make_tree(tmp_path / 'fragile')
    with open(folder / 'a big first.bin', 'wb') as file:  # verified first: time to flip the byte
        file.write(os.urandom(200 << 20))
    rig.ok('prepare', str(folder), '--wait')
    on_tape = str(folder).lstrip('/') + '/sub dir/a file.bin'
    task_id = queued_id(rig.ok('archive', str(folder), TAPE))
    # the copy is on the tape, its index written, the tape mounted again read-only: the media goes bad
    rig.freeze_when(task_id, lambda state, step: step == 'verifying')
    sim_fault(rig, 'flip-byte', TAPE, on_tape)
    sim_fault(rig, 'flip-byte', TAPE, 'pytarchive-descriptions/000001.manifest.tsv')  # the description too
    rig.thaw()

    task = rig.wait_for({task_id: {'failed'}}, timeout=120)[task_id]
    assert 'verification failed' in task['error'] and 'sub dir/a file.bin: checksum differs' in task['error']
    assert 'pytarchive-descriptions/000001.manifest.tsv: checksum differs from what was written' in task['error']
    assert 'NOT archived' in task['error']
    assert rig.ok('deleteable').startswith('nothing is archived')
    assert json.loads(rig.ok('summary', '--json'))['folders'] == {'failed': 1}
    described = [name for name in rig.volume() if name.endswith(('.header.txt', '.manifest.tsv'))]
    assert described == []  # the tape does not describe a copy that failed its read-back

    # Archived again: a fresh copy (next to the bad one, which LTFS cannot reclaim anyway) verifies.
    assert 'verified' in archived_again(rig, folder)
    assert str(folder) in rig.ok('deleteable')
    described = sorted(name for name in rig.volume() if name.endswith(('.header.txt', '.manifest.tsv')))
    assert described == ['pytarchive-descriptions/000001.header.txt', 'pytarchive-descriptions/000001.manifest.tsv']


def many_small_files(folder: Path, groups: int = 20, per_group: int = 400) -> Path:
    """Enough files that copying them takes a few seconds on the virtual library."""
    for group in range(groups):
        (folder / f'group {group}').mkdir(parents=True)
        for index in range(per_group):
            (folder / f'group {group}' / f'{index}.txt').write_text(f'{group}-{index}\n' * 20)
    return folder


def archive_until_copying(rig, folder: Path) -> int:
    """Queue the archive; return its task id with the service frozen (rig.freeze) mid-copy, some
    files copied and more to go. The service runs in slices of 50 ms until then, so the moment is
    caught however loaded the machine is (a poll through the client could miss a short copy).
    The caller thaws it or crashes it."""
    task_id = queued_id(rig.ok('archive', str(folder), TAPE))
    deadline = time.monotonic() + 120
    while True:
        rig.freeze()
        [(state, step, done, total)] = rig.query(
            'SELECT state, step, files_done, files_total FROM tasks WHERE id = ?', (task_id,)
        )
        if state == 'running' and step == 'copying' and done:
            assert done < total, 'the copy ended before the test could act: give it more files'
            return task_id
        rig.thaw()
        assert time.monotonic() < deadline, (state, step, done)
        time.sleep(0.05)


def tape_row(rig) -> dict:
    return next(tape for tape in json.loads(rig.ok('summary', '--json'))['tapes'] if tape['barcode'] == TAPE)


def test_tape_full_mid_write_fails_cleanly_and_the_tape_is_never_offered_again(make_rig, tmp_path):
    rig = formatted_rig(make_rig, capacity=200 << 20)  # 185 MiB for data
    folder = tmp_path / 'too big'
    folder.mkdir()
    for index in range(120):
        (folder / f'{index:03d}.bin').write_bytes(os.urandom(1 << 20))
    rig.ok('prepare', str(folder), '--wait')
    task_id = archive_until_copying(rig, folder)
    # something else fills the tape while the copy runs: the space check passed, the copy meets ENOSPC
    with open(os.path.join(rig.mountpoint, 'filler'), 'wb') as filler:
        with contextlib.suppress(OSError):
            for _ in range(120):
                filler.write(os.urandom(1 << 20))
    rig.thaw()

    task = rig.wait_for({task_id: {'failed'}}, timeout=120)[task_id]
    assert 'became full' in task['error'] and 'nothing archived' in task['error']
    assert 'is recorded full and takes no more archives' in task['error']
    assert rig.ok('deleteable').startswith('nothing is archived')
    assert json.loads(rig.ok('summary', '--json'))['folders'] == {'failed': 1}
    assert tape_row(rig)['free'] == 0  # read from the volume: LTFS never gives the space back
    refused = rig.client('archive', str(folder), TAPE, '--wait')
    assert refused.returncode == 1 and 'TPN001L9 is full' in refused.stderr and refused.stderr.count('\n') == 1
    assert rig.drive().barcode is None
    assert not any(path.startswith(str(folder).lstrip('/')) for path in rig.volume())  # the partial copy went


def test_kill_during_archive_then_requeue_finishes_with_one_manifest(make_rig, tmp_path):
    rig = formatted_rig(make_rig)
    folder = many_small_files(tmp_path / 'many')
    rig.ok('prepare', str(folder), '--wait')
    task_id = archive_until_copying(rig, folder)
    rig.crash()
    task = rig.restart_and_requeue(task_id)
    assert task['state'] == 'done', task

    with sqlite3.connect(rig.database) as db:
        rows = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT path), COUNT(checksum) FROM manifest WHERE kind = 'file'"
        ).fetchone()
    assert rows == (8000, 8000, 8000)
    assert json.loads(rig.ok('deleteable', '--json'))[0]['file_count'] == 8000


def test_sigterm_mid_archive_stops_after_the_current_file_and_requeue_finishes(make_rig, tmp_path):
    rig = formatted_rig(make_rig)
    folder = many_small_files(tmp_path / 'stopped')
    rig.ok('prepare', str(folder), '--wait')
    task_id = archive_until_copying(rig, folder)
    rig.thaw()
    assert rig.stop() == 0  # the drive emptied before exiting
    assert rig.drive().barcode is None and not rig.mounted()
    with sqlite3.connect(rig.database) as db:
        saved = db.execute('SELECT COUNT(checksum) FROM manifest').fetchone()[0]
    assert saved > 0  # what was copied before the stop keeps its checksum for the resumed run
    task = rig.restart_and_requeue(task_id)
    assert task['state'] == 'done' and 'verified: 8000 files' in task['result'], task


def test_cancel_a_queued_task_and_a_running_archive_then_requeue_it(make_rig, tmp_path):
    rig = formatted_rig(make_rig)
    folder = many_small_files(tmp_path / 'cancelled')
    rig.ok('prepare', str(folder), '--wait')
    task_id = archive_until_copying(rig, folder)
    rig.thaw()
    behind = queued_id(rig.ok('check', TAPE))
    said = rig.ok('cancel', f'{task_id},{behind}')
    assert f'task {behind} cancelled (it never ran)' in said
    assert f'task {task_id} stops at its next checkpoint and ends cancelled' in said
    tasks = rig.wait_for({task_id: {'cancelled'}, behind: {'cancelled'}})
    assert (
        tasks[behind]['started'] is None and tasks[behind]['error'] == 'cancelled by `pytarchive cancel` before it ran'
    )
    assert tasks[task_id]['error'].startswith('cancelled by `pytarchive cancel` while it ran')
    deadline = time.monotonic() + 60
    while rig.drive().barcode is not None or rig.mounted():  # the drive is emptied after a cancel
        assert time.monotonic() < deadline, rig.log.read_text()
        time.sleep(0.2)
    assert rig.ok('deleteable').startswith('nothing is archived')  # nothing half-recorded as archived
    again = rig.client('cancel', str(task_id))
    assert again.returncode == 1 and f'task {task_id} is cancelled already' in again.stderr
    assert 'cancelled' in rig.ok('queue').splitlines()[-1]
    rig.ok('requeue', str(task_id))
    task = rig.wait_for({task_id: {'done', 'failed'}}, timeout=300)[task_id]
    assert task['state'] == 'done' and 'verified: 8000 files' in task['result'], task


def test_a_file_written_during_its_own_copy_is_never_archived_as_verified(make_rig, tmp_path):
    rig = formatted_rig(make_rig, capacity=700_000_000)
    rig.ok('check', TAPE, '--wait')
    folder = make_tree(tmp_path / 'being written')
    big = folder / 'big.bin'
    with open(big, 'wb') as file:
        for _ in range(100):
            file.write(os.urandom(4 << 20))  # 400 MiB
    rig.ok('prepare', str(folder), '--wait')
    task_id = queued_id(rig.ok('archive', str(folder), TAPE))

    deadline = time.monotonic() + 60
    while rig.reading(big) < (8 << 20):  # the copy of big.bin is under way
        assert time.monotonic() < deadline, rig.tasks()[task_id]
        time.sleep(0.002)
    rig.freeze()
    try:
        with open(big, 'r+b') as file:  # two writes: one where the copy has been, one where it is going
            file.write(b'written during the copy')
            file.seek(300 << 20)
            file.write(b'written during the copy')
    finally:
        rig.thaw()

    task = rig.wait_for({task_id: {'done', 'failed'}}, timeout=120)[task_id]
    assert task['state'] == 'failed', task
    assert f'{big} changed while being archived' in task['error'] and 'NOT archived' in task['error']
    assert rig.ok('deleteable').startswith('nothing is archived')
    assert json.loads(rig.ok('summary', '--json'))['folders'] == {'failed': 1}
    assert rig.drive().barcode is None and not rig.mounted()
    assert not any(path.startswith(str(folder).lstrip('/')) for path in rig.volume())  # its partial copy went


def test_an_archive_stopped_by_a_change_since_prepare_leaves_nothing_on_the_tape(make_rig, tmp_path):
    rig = formatted_rig(make_rig)
    rig.ok('check', TAPE, '--wait')
    folder = tmp_path / 'changed later'
    folder.mkdir()
    for name in ('a.bin', 'b.bin'):  # copied before the changed file is reached
        (folder / name).write_bytes(os.urandom(30_000_000))
    (folder / 'z edited.txt').write_text('as prepared\n')
    rig.ok('prepare', str(folder), '--wait')
    (folder / 'z edited.txt').write_text('edited after prepare\n')

    failed = rig.client('archive', str(folder), TAPE, '--wait')
    assert failed.returncode == 1
    assert 'z edited.txt changed since prepare' in failed.stderr and failed.stderr.count('\n') == 1
    assert not any(path.startswith(str(folder).lstrip('/')) for path in rig.volume())  # copied, then removed
    assert rig.ok('deleteable').startswith('nothing is archived')

    rig.ok('prepare', str(folder), '--wait')  # prepared again, it goes to its own path, not a '.ID' beside it
    assert f'as {str(folder).lstrip("/")} and verified' in rig.ok('archive', str(folder), TAPE, '--wait')


def test_archive_queued_twice_writes_one_copy_and_a_second_tape_needs_a_new_prepare(make_rig, tmp_path):
    rig = formatted_rig(make_rig)
    rig.ok('format', 'TPN002L9', '--wait')
    folder = make_tree(tmp_path / 'asked twice')
    rig.ok('prepare', str(folder), '--wait')
    rig.ok('check', 'TPN002L9')
    with rig.drive_held():  # the check holds the drive while the three are queued behind it
        first, other_tape, again = (
            queued_id(rig.ok('archive', str(folder), barcode)) for barcode in (TAPE, 'TPN002L9', TAPE)
        )
    tasks = rig.wait_for(
        {first: {'done', 'failed'}, other_tape: {'done', 'failed'}, again: {'done', 'failed'}}, timeout=120
    )

    tape_path = str(folder).lstrip('/')
    assert tasks[first]['state'] == 'done' and tasks[again]['state'] == 'done', tasks
    assert tasks[again]['result'] == tasks[first]['result']  # found archived: nothing copied a second time
    assert tasks[other_tape]['state'] == 'failed'
    assert f'{folder} is already archived to {TAPE}' in tasks[other_tape]['error']
    assert 'prepare it again to archive another copy' in tasks[other_tape]['error']
    assert rig.query('SELECT state, tape, tape_path FROM folders') == [('archived', TAPE, tape_path)]
    assert [
        tape['folders']
        for tape in json.loads(rig.ok('summary', '--json'))['tapes']
        if tape['barcode'] in (TAPE, 'TPN002L9')
    ] == [1, 0]
    # Asked again once archived, the command answers at once, without "prepare first" (which would
    # read as "archive it again") and without queueing a task bound to fail.
    refused = rig.client('archive', str(folder), 'TPN002L9')
    assert refused.returncode == 1 and refused.stderr.count('\n') == 1
    assert f'{folder} is already archived to {TAPE}' in refused.stderr and 'prepare it again' in refused.stderr
    assert 'queued' not in refused.stdout
