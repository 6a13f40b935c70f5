"""pytarchive.state.catalog: find, ls and history over a catalog written by hand (the archives
themselves are in tests/pytarchive/tasks/test_archive.py)."""

import pytest

from pytarchive.state import catalog


def add_folder(db, path, state='archived', tape='TPN001L9', entries=()):
    with db.transaction() as conn:
        conn.execute('INSERT OR IGNORE INTO tapes (barcode) VALUES (?)', (tape,))
        folder_id = conn.execute(
            'INSERT INTO folders (path, tape, state, created, archived, file_count, source_bytes, tape_path) '
            "VALUES (?, ?, ?, '2026-01-01T00:00:00+00:00', '2026-01-02T00:00:00+00:00', ?, ?, ?)",
            (path, tape, state, len(entries), 10 * len(entries), path.lstrip('/')),
        ).lastrowid
        conn.executemany(
            "INSERT INTO manifest (folder, path, kind, size, mtime, checksum) VALUES (?, ?, 'file', 10, 0, ?)",
            [(folder_id, entry, f'{n:064x}') for n, entry in enumerate(entries)],
        )
    return folder_id


@pytest.fixture
def filled(db):
    add_folder(db, '/data/survey 2026', entries=['raw/a.tif', 'raw/B.TIF', 'notes/readme.txt', '100%_done.txt'])
    add_folder(db, '/data/lab', tape='TPN002L9', entries=['results/run1.csv', 'results/run2.csv'])
    add_folder(db, '/data/pending', state='prepared', tape=None, entries=['raw/c.tif'])
    return db


def paths(found):
    return [entry['path'] for entry in found[0]]


def test_a_part_of_a_path_is_found_wherever_it_falls_in_any_case(filled):
    assert paths(catalog.find(filled, 'b.tif', 100)) == ['/data/survey 2026/raw/B.TIF']  # in the manifest path
    assert paths(catalog.find(filled, 'LAB/', 100)) == ['/data/lab/results/run1.csv', '/data/lab/results/run2.csv']
    assert paths(catalog.find(filled, '2026/raw/a', 100)) == ['/data/survey 2026/raw/a.tif']  # across the '/'
    assert paths(catalog.find(filled, '%_done', 100)) == ['/data/survey 2026/100%_done.txt']  # % and _ literal
    assert paths(catalog.find(filled, 'c.tif', 100)) == []  # only prepared: on no tape
    [entry], more = catalog.find(filled, 'run1', 100)
    assert (entry['tape'], entry['state'], entry['size'], more) == ('TPN002L9', 'archived', 10, False)


def test_a_glob_matches_the_whole_path_and_a_limit_says_more_matched(filled):
    assert paths(catalog.find(filled, '/data/*/raw/*.tif', 100)) == ['/data/survey 2026/raw/a.tif']
    found, more = catalog.find(filled, '.csv', 1)
    assert len(found) == 1 and more


def test_ls_and_history_of_a_folder_and_a_tape(filled, db):
    again = add_folder(db, '/data/lab', state='failed', tape='TPN001L9', entries=['results/run1.csv'])
    assert [r['state'] for r in catalog.history(db, '/data/lab')] == ['archived', 'failed']
    assert catalog.newest_with_tape(db, '/data/lab')['tape'] == 'TPN002L9'  # the newest archived one
    assert [f['path'] for f in catalog.on_tape(db, 'TPN001L9')] == ['/data/survey 2026', '/data/lab']
    entries, total = catalog.contents(db, again, 'results', 10)
    assert ([e['path'] for e in entries], total) == (['results/run1.csv'], 1)
    entries, total = catalog.contents(db, 1, '', 2)
    assert len(entries) == 2 and total == 4
