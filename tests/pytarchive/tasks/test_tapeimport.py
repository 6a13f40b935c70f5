"""import end to end: the service on the virtual library with the real LTFS. Archives describe themselves
on their tapes; after the catalog is lost, importing each tape brings back find, ls and a restore
byte for byte."""

import contextlib
import os
import sqlite3
from pathlib import Path

import pytest

from tests.pytarchive.rig import TAPE, archived, formatted_rig, make_tree, snapshot

pytestmark = [pytest.mark.root, pytest.mark.slow]  # the virtual library mounts its tapes
OTHER = 'TPN002L9'
DESCRIBED = 'pytarchive-descriptions'


def _many_files(root: Path, count: int) -> Path:
    (root / 'deep').mkdir(parents=True)
    for index in range(count):
        (root / 'deep' / f'file {index}.dat').write_bytes(os.urandom(1000 + index))
    return root


def test_after_the_catalog_is_lost_importing_each_tape_brings_back_find_ls_and_restore(make_rig, tmp_path):
    rig = formatted_rig(make_rig, general='pack_threshold = 8')
    rig.ok('format', OTHER, '--wait')
    refused = rig.client('import', OTHER, '--wait')
    assert refused.returncode == 1 and refused.stderr.count('\n') == 1
    assert f'{OTHER} has no pytarchive description (no pytarchive-descriptions folder at its root)' in refused.stderr

    plain = make_tree(tmp_path / 'projects' / 'Q3 report')
    (plain / 'tab\there and back\\slash.txt').write_text('awkward name\n')
    packed = _many_files(tmp_path / 'raw' / 'many', 12)  # more than pack_threshold: one .tar.zst on tape
    before = {plain: snapshot(plain), packed: snapshot(packed)}
    assert 'verified' in archived(rig, plain, 'quarterly report')
    rig.ok('prepare', str(packed), 'raw data', '--wait')
    assert 'verified' in rig.ok('archive', str(packed), OTHER, '--wait')
    for barcode in (TAPE, OTHER):  # each tape describes its archive and holds the catalog as it was written
        on_tape = rig.volume(barcode)
        described = sorted(name for name in on_tape if name.startswith('pytarchive-descriptions/'))
        assert described == [
            'pytarchive-descriptions/000001.header.txt',
            'pytarchive-descriptions/000001.manifest.tsv',
            'pytarchive-descriptions/README.txt',
            'pytarchive-descriptions/catalog.sqlite',
        ]
        assert all(on_tape[name] > 0 for name in described)
    # What a person reads without pytarchive: the header's lines, the manifest's columns.
    found = rig.read_from_tape(TAPE, f'{DESCRIBED}/000001.header.txt', f'{DESCRIBED}/000001.manifest.tsv')
    header = found[f'{DESCRIBED}/000001.header.txt'].decode().splitlines()
    assert f'Folder: {plain}' in header and 'Description: quarterly report' in header and 'Packed: no' in header
    assert 'Files: 5' in header and f'Tape: {TAPE}' in header
    manifest = [line.split('\t') for line in found[f'{DESCRIBED}/000001.manifest.tsv'].decode().splitlines()]
    assert manifest[0][:3] == ['# path', 'kind', 'size']
    awkward = next(line for line in manifest if line[0].startswith('tab'))
    assert awkward[:3] == ['tab\\there and back\\\\slash.txt', 'file', '13'] and len(awkward[7]) == 64
    # The catalog's copy on the second tape: made after the first archive was verified, during the second.
    [catalog_copy] = rig.read_from_tape(OTHER, f'{DESCRIBED}/catalog.sqlite').values()
    (tmp_path / 'copy.sqlite').write_bytes(catalog_copy)
    with contextlib.closing(sqlite3.connect(tmp_path / 'copy.sqlite')) as copy:
        records = copy.execute('SELECT path, state, tape FROM folders ORDER BY id').fetchall()
    assert records == [(str(plain), 'archived', TAPE), (str(packed), 'archiving', OTHER)]

    rig.stop()
    for name in ('', '-wal', '-shm'):
        Path(f'{rig.database}{name}').unlink(missing_ok=True)
    rig.start('--new-database')
    assert rig.client('find', 'report').stdout.strip() == 'nothing in the catalog matches'

    assert rig.client('import', 'CLN001L1').stderr.endswith('pytarchive never uses cleaning tapes for data\n')
    not_there = rig.client('import', 'TPN777L9')
    assert not_there.returncode == 1 and 'TPN777L9 is not in the library' in not_there.stderr
    first = rig.ok('import', TAPE, '--wait')
    assert f'{TAPE}: 1 archives imported (5 files, ' in first
    second = rig.ok('import', OTHER, '--wait')
    assert f'{OTHER}: 1 archives imported (12 files, ' in second
    again = rig.ok('import', TAPE, '--wait')
    assert f'{TAPE}: 0 archives imported (0 files, 0 B), 1 skipped (already in the catalog: {plain})' in again

    found = rig.ok('find', 'DEEPER/small')
    assert f'{plain}/sub dir/deeper/small.txt' in found and TAPE in found
    assert str(packed) in rig.ok('ls', OTHER) and str(plain) in rig.ok('ls', TAPE)
    inside = rig.ok('ls', str(plain))
    assert 'tab\there and back\\slash.txt' in inside and 'sub dir/a file.bin' in inside
    deleteable = rig.ok('deleteable')
    assert str(plain) in deleteable and str(packed) in deleteable

    for folder in (plain, packed):
        restored = tmp_path / f'restored {folder.name}'
        out = rig.ok('restore', str(folder), '--to', str(restored), '--wait')
        assert 'verified' in out
        assert snapshot(restored) == before[folder]
    assert 'matching their checksums' in rig.ok('verify', TAPE, '--wait')
