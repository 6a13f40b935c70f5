"""A folder larger than a tape, archived in parts (`pytarchive archive PATH TAPE1,TAPE2,...`), end to
end on a virtual library of small cartridges with real LTFS: each part read back on its own tape,
tapes running out leaving the archived parts to carry on from, the folder deleteable only once
whole, restore reading each tape in turn, verify and ls per tape; a single file larger than a tape
cut into pieces, each a file of its own on its tape, and put back together by restore."""

import json
import os
from pathlib import Path

import pytest

from tests.pytarchive.rig import snapshot

TAPES = ['TPN001L9', 'TPN002L9', 'TPN003L9']
MB = 1_000_000


def small_library(make_rig):
    # 160 MiB cartridges: LTFS gives about 148 MB to data, and archive keeps a 32 MiB reserve.
    rig = make_rig(capacity=160 << 20, tapes=','.join([*TAPES, 'CLN001L1']))
    rig.start()
    for tape in TAPES:
        rig.ok('format', tape, '--wait')
    return rig


@pytest.mark.root
@pytest.mark.slow
def test_a_folder_larger_than_a_tape_is_archived_in_parts_and_restored_whole(make_rig, tmp_path):
    rig = small_library(make_rig)
    folder = tmp_path / 'survey'
    for index in range(5):  # two 45 MB files fit on a tape: three tapes for five
        (folder / f'run {index}').mkdir(parents=True)
        (folder / f'run {index}' / 'scan.raw').write_bytes(os.urandom(45 * MB))
        (folder / f'run {index}' / 'notes.txt').write_text(f'run {index}\n')
    (folder / 'run 4' / 'latest').symlink_to('notes.txt')
    before = snapshot(folder)
    rig.ok('prepare', str(folder), 'survey runs', '--wait')

    short = rig.client('archive', str(folder), 'TPN001L9,TPN002L9', '--wait')
    assert short.returncode == 1
    assert f'{folder} does not fit on TPN001L9, TPN002L9: 2 parts are archived' in short.stderr
    assert f'`pytarchive archive {folder} TPN001L9,TPN002L9,TAPE` carries on' in short.stderr
    assert rig.ok('deleteable').startswith('nothing is archived')  # not whole yet

    done = rig.ok('archive', str(folder), ','.join(TAPES), '--wait')
    assert f'{folder} archived across 3 tapes, each part verified on its own tape: 10 files' in done
    assert rig.query('SELECT part, tape, state FROM parts ORDER BY part') == [
        (1, 'TPN001L9', 'archived'),
        (2, 'TPN002L9', 'archived'),
        (3, 'TPN003L9', 'archived'),
    ]
    assert f'{folder}  TPN001L9+TPN002L9+TPN003L9 ' in rig.ok('deleteable')
    assert '2 of 3' in rig.ok('ls', 'TPN002L9')
    found = json.loads(rig.ok('find', 'scan.raw', '--json'))['entries']
    assert [entry['tape'] for entry in found] == ['TPN001L9', 'TPN001L9', 'TPN002L9', 'TPN002L9', 'TPN003L9']
    tapes = {tape['barcode']: tape for tape in json.loads(rig.ok('summary', '--json'))['tapes']}
    assert [tapes[tape]['folders'] for tape in TAPES] == [1, 1, 1]
    assert 'matching their checksums' in rig.ok('verify', 'TPN002L9', '--wait')

    restored = tmp_path / 'restored'
    out = rig.ok('restore', str(folder), '--to', str(restored), '--wait')
    assert f'restored from {", ".join(TAPES)} to {restored}' in out
    assert snapshot(restored) == before
    only = rig.ok('restore', str(folder), '--to', str(tmp_path / 'one'), '--only', 'run 3', '--wait')
    assert 'restored from TPN002L9 to' in only  # only the tape holding that sub-folder


@pytest.mark.root
@pytest.mark.slow
def test_a_single_file_larger_than_a_tape_is_cut_into_pieces_that_read_on_their_own_and_restore_whole(
    make_rig, tmp_path
):
    rig = small_library(make_rig)
    folder = tmp_path / 'instrument'
    (folder / 'raw').mkdir(parents=True)
    (folder / 'raw' / 'huge.raw').write_bytes(os.urandom(130 * MB))  # more than a whole tape takes
    (folder / 'raw' / 'small.txt').write_text('after the big one\n')
    (folder / 'a first.txt').write_text('before it\n')
    before = snapshot(folder)
    rig.ok('prepare', str(folder), '--wait')
    done = rig.ok('archive', str(folder), 'TPN001L9,TPN002L9', '--wait')
    assert 'archived across 2 tapes' in done
    pieces = rig.query('SELECT part, start, size FROM pieces ORDER BY start')
    assert [part for part, _, _ in pieces] == [1, 2] and pieces[1][1] == pieces[0][2]
    assert sum(size for _, _, size in pieces) == 130 * MB
    rig.stop()
    on_tapes = {**rig.volume('TPN001L9'), **rig.volume('TPN002L9')}
    named = sorted(path for path in on_tapes if '.pytarchive-piece-' in path)
    assert [on_tapes[path] for path in named] == [size for _, _, size in pieces]
    assert named[0].endswith('raw/huge.raw.pytarchive-piece-00000000000000000000')
    rig.start()

    assert 'matching their checksums' in rig.ok('verify', str(folder), '--wait')
    restored = tmp_path / 'restored'
    out = rig.ok('restore', str(folder), '--to', str(restored), '--wait')
    assert 'restored from TPN001L9, TPN002L9' in out and '3 written' in out
    assert snapshot(restored) == before
    assert not [name for name in os.listdir(restored) if name.startswith('.pytarchive')]  # no assembly left

    # Each tape describes its part: with the catalog lost, importing the tapes (the last one first)
    # brings the folder back, archived once both parts are in, and it restores whole again.
    rig.stop()
    for name in ('', '-wal', '-shm'):
        Path(f'{rig.database}{name}').unlink(missing_ok=True)
    rig.start('--new-database')
    rig.ok('import', 'TPN002L9', '--wait')
    assert rig.query('SELECT state FROM folders') == [('archiving',)]  # part 1 not read yet
    assert rig.ok('deleteable').startswith('nothing is archived')
    rig.ok('import', 'TPN001L9', '--wait')
    assert rig.query('SELECT state, file_count, source_bytes FROM folders') == [('archived', 3, 130 * MB + 28)]
    assert rig.query('SELECT part, start, size FROM pieces ORDER BY start') == pieces
    again = tmp_path / 'again'
    assert 'restored from TPN001L9, TPN002L9' in rig.ok('restore', str(folder), '--to', str(again), '--wait')
    assert snapshot(again) == before
