"""`pytarchive copy`: a further verified copy of an archived folder on another tape, end to end on the
virtual library with real LTFS: from the folder on disk, or read from a copy on tape when the folder
is packed or gone; [General] copies holding folders back from `deleteable`; restore reading the
sound copy when the first went bad; history, find and ls showing the copies."""

import json
import shutil
from pathlib import Path

import pytest

from tests.pytarchive.rig import TAPE, archived, formatted_rig, make_tree, queued_id, sim_fault, snapshot

SECOND = 'TPN002L9'


@pytest.mark.root
@pytest.mark.slow
def test_a_second_copy_is_what_lets_a_folder_go_and_what_restore_reads_when_the_first_goes_bad(make_rig, tmp_path):
    rig = formatted_rig(make_rig, general='copies = 2')
    rig.ok('format', SECOND, '--wait')
    folder = make_tree(tmp_path / 'projects' / 'survey')
    before = snapshot(folder)
    archived(rig, folder)
    assert rig.ok('deleteable').strip() == 'nothing is archived and verified yet on 2 tapes'  # one copy of two

    same = rig.client('copy', str(folder), TAPE)
    assert same.returncode == 1 and f'{TAPE} already holds copy 1 of {folder}: a copy goes to another tape' in (
        same.stderr
    )
    done = rig.ok('copy', str(folder), SECOND, '--wait')
    assert f'copy 2 of {folder} archived to {SECOND}' in done and 'verified' in done and 'read from tape' not in done
    listed = rig.ok('deleteable')
    assert f'{TAPE}, {SECOND}' in listed and 'at least 2 tapes each' in listed
    summary = rig.ok('summary')
    assert 'folders: 1 archived\n' in summary  # a copy is not another folder
    assert 'copies: 1 further copies archived; 0 folders have fewer than [General] copies = 2' in summary
    history = rig.ok('history', str(folder)).splitlines()
    assert history[0].split()[:4] == ['RECORD', 'COPY', 'STATE', 'TAPE']
    assert [line.split()[1:4] for line in history[1:]] == [['1', 'archived', TAPE], ['2', 'of', '1']]
    assert f'{TAPE}, {SECOND}' in rig.ok('find', 'small.txt')
    assert f'{folder}' in rig.ok('ls', SECOND)

    # The first copy goes bad on its tape; fixity finds it: the folder has one sound copy left, so it
    # leaves deleteable, and a restore reads the second copy.
    sim_fault(rig, 'flip-byte', TAPE, str(folder).lstrip('/') + '/sub dir/a file.bin')
    assert rig.client('verify', TAPE, '--wait').returncode == 1
    assert rig.ok('deleteable').startswith('nothing is archived')
    restored = tmp_path / 'restored'
    out = rig.ok('restore', str(folder), '--to', str(restored), '--wait')
    assert f'restored from {SECOND}' in out
    assert snapshot(restored) == before


@pytest.mark.root
@pytest.mark.slow
def test_a_packed_folder_and_a_deleted_one_are_copied_from_tape_and_the_copies_verify(make_rig, tmp_path):
    rig = formatted_rig(make_rig, general='pack_threshold = 2')
    rig.ok('format', SECOND, '--wait')
    packed = make_tree(tmp_path / 'many')  # more files than the threshold: its tar.zst goes once archived
    gone = make_tree(tmp_path / 'gone')
    (gone / 'sub dir' / 'deeper' / 'small.txt').unlink()
    (gone / 'link to small').unlink()
    for path in (gone / 'zero', gone / 'données été.txt', gone / 'sub dir' / 'a file.bin'):
        path.unlink()  # two files or fewer: not packed
    (gone / 'kept.bin').write_bytes(b'x' * 70_000)
    archived(rig, packed)
    archived(rig, gone)
    assert rig.query('SELECT packed IS NOT NULL FROM folders WHERE path = ?', (str(gone),)) == [(0,)]
    shutil.rmtree(gone)  # deleted once archived, as deleteable allows

    for folder in (packed, gone):
        done = rig.ok('copy', str(folder), SECOND, '--wait')
        task = queued_id(done)
        assert f'copy 2 of {folder} archived to {SECOND}' in done
        assert done.rstrip().endswith(f'(read from {TAPE} through {tmp_path / "scratch"}/pytarchive-copy-{task})')
    assert not list((tmp_path / 'scratch').iterdir())  # nothing staged is left behind
    assert 'matching their checksums' in rig.ok('verify', SECOND, '--wait')
    copies = [row for row in json.loads(rig.ok('history', str(packed), '--json')) if row['copy_of']]
    assert [(row['tape'], row['state'], row['copy_number']) for row in copies] == [(SECOND, 'archived', 2)]
    restored = tmp_path / 'back'
    assert 'kept.bin' in rig.ok('ls', str(gone))
    rig.ok('restore', str(gone), '--to', str(restored), '--wait')
    assert (restored / 'kept.bin').read_bytes() == b'x' * 70_000

    # Each copy describes itself on its tape: with the catalog lost, importing the second tape first
    # and then the first brings each folder back as one family of two copies sharing one manifest.
    rig.stop()
    for name in ('', '-wal', '-shm'):
        Path(f'{rig.database}{name}').unlink(missing_ok=True)
    rig.start('--new-database')
    rig.ok('import', SECOND, '--wait')
    rig.ok('import', TAPE, '--wait')
    families = rig.query(
        'SELECT f.path, f.tape, f.copy_of IS NULL, (SELECT COUNT(*) FROM manifest m WHERE m.folder = f.id) '
        'FROM folders f ORDER BY f.path, f.copy_of IS NOT NULL'
    )
    assert [(path, tape, first) for path, tape, first, _ in families] == [
        (str(gone), SECOND, 1),
        (str(gone), TAPE, 0),
        (str(packed), SECOND, 1),
        (str(packed), TAPE, 0),
    ]
    assert [rows > 0 for *_, rows in families] == [True, False, True, False]  # one manifest per family
    assert rig.ok('deleteable').count(f'{TAPE}, {SECOND}') == 2  # by copy number


@pytest.mark.root
@pytest.mark.slow
def test_with_two_drives_a_copy_goes_tape_to_tape_without_staging(make_rig, tmp_path):
    rig = make_rig(drives=2)
    rig.start()
    for tape in (TAPE, SECOND):
        rig.ok('format', tape, '--wait')
    packed, gone = make_tree(tmp_path / 'packed'), make_tree(tmp_path / 'gone')
    rig.ok('prepare', str(packed), '--wait')
    for folder in (packed, gone):
        archived(rig, folder)
    shutil.rmtree(gone)
    done = rig.ok('copy', str(gone), SECOND, '--wait')
    again = rig.ok('copy', str(packed), SECOND, '--from-tape', '--wait')
    for out, folder in ((done, gone), (again, packed)):  # read on the other drive, nothing staged
        assert f'copy 2 of {folder} archived to {SECOND}' in out and f'(read from {TAPE} in drive ' in out
        assert 'pytarchive-copy-' not in out
    assert 'matching their checksums' in rig.ok('verify', SECOND, '--wait')
    assert [rig.drive(index).full for index in (0, 1)] == [False, False]  # both tapes back home
