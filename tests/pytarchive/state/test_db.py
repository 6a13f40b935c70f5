"""The database itself: WAL, foreign keys, schema versions, and a file that is deleted, replaced or
corrupted (refused in one line, the catalog rescued where it can be)."""

import re
import sqlite3

import pytest

from pytarchive.state.db import MIGRATIONS, SCHEMA_VERSION, Database, DatabaseError, DatabaseUnusable
from pytarchive.taskqueue import TaskStorage


def test_new_database_is_wal_with_foreign_keys_and_the_current_schema(tmp_path, db):
    assert db.version == SCHEMA_VERSION
    assert db.query('PRAGMA journal_mode')[0][0] == 'wal'
    assert db.query('PRAGMA foreign_keys')[0][0] == 1
    tables = {row['name'] for row in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {'tapes', 'folders', 'manifest', 'tasks'} <= tables
    assert (tmp_path / 'state').stat().st_mode & 0o777 == 0o700


def test_reopening_keeps_data_and_a_newer_schema_is_refused(tmp_path):
    path = str(tmp_path / 'p.db')
    first = Database(path)
    TaskStorage(first).enqueue('scan', {})
    first.close()
    again = Database(path)
    assert [task.kind for task in TaskStorage(again).list()] == ['scan']
    again.close()
    raw = sqlite3.connect(path)
    raw.execute(f'PRAGMA user_version = {SCHEMA_VERSION + 1}')
    raw.close()
    with pytest.raises(DatabaseError, match=f'schema version {SCHEMA_VERSION + 1} is newer than this pytarchive'):
        Database(path)


def test_a_version_3_queue_is_upgraded_keeping_its_tasks_and_ids_and_may_hold_cancelled_tasks(tmp_path):
    path = str(tmp_path / 'p.db')
    raw = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:3]:
        for statement in statements:
            raw.execute(statement)
    raw.execute('PRAGMA user_version = 3')
    for n in range(1, 4):
        raw.execute(
            "INSERT INTO tasks (kind, args, state, created) VALUES ('scan', '{}', 'done', '2026-01-01T00:00:00+00:00')"
        )
    raw.execute("UPDATE sqlite_sequence SET seq = 9 WHERE name = 'tasks'")  # ids 4 to 9 were handed out once
    raw.close()
    db = Database(path)
    storage = TaskStorage(db)
    assert db.version == SCHEMA_VERSION and [t.id for t in storage.list()] == [1, 2, 3]
    queued = storage.enqueue('scan', {})
    assert queued.id == 10  # never an id handed out before
    assert storage.cancel([10], 'the test') == {10: 'queued'} and storage.get(10).state == 'cancelled'


def test_a_file_that_is_not_a_database_is_one_line(tmp_path):
    path = tmp_path / 'p.db'
    path.write_text('not sqlite ' * 100)
    with pytest.raises(DatabaseUnusable) as caught:
        Database(str(path))
    assert caught.value.message == (
        f'the database {path} is corrupt (file is not a database): restore it from '
        'the backup of its state directory (see README: State)'
    )


def test_foreign_keys_are_enforced(db):
    with pytest.raises(sqlite3.IntegrityError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO manifest (folder, path, size, mtime) VALUES (99, 'a', 1, 0)")


def test_a_failed_transaction_changes_nothing(db, storage):
    with pytest.raises(RuntimeError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO tasks (kind, args, state, created) VALUES ('scan', '{}', 'queued', 'now')")
            raise RuntimeError('half way')
    assert storage.list() == []


RESTORE = 'restore it from the backup of its state directory (see README: State)'


def catalog_with_tasks(path: str, count: int = 400) -> None:
    """A closed database whose tasks span many pages."""
    database = Database(path)
    storage = TaskStorage(database)
    for index in range(count):
        storage.enqueue('prepare', {'path': f'/data/folder-{index:04d}', 'description': 'x' * 40})
    database.close()


def overwrite(path, offset: int, data: bytes) -> None:
    with open(path, 'r+b') as file:
        file.seek(offset)
        file.write(data)


def test_a_corrupted_page_is_found_at_open_not_by_the_first_command(tmp_path):
    path = tmp_path / 'p.db'
    catalog_with_tasks(str(path))
    overwrite(path, 4096 * 3, b'\xa5' * 4096)  # a page of the tasks table; the header is intact
    with pytest.raises(DatabaseUnusable) as caught:
        Database(str(path))
    assert caught.value.message.startswith(f'the database {path} is corrupt (')
    assert caught.value.message.endswith(RESTORE) and '\n' not in caught.value.message


@pytest.mark.parametrize('how', ['deleted', 'replaced'])
def test_a_database_deleted_or_replaced_while_open_is_refused_and_rescued(tmp_path, how):
    path = tmp_path / 'state' / 'p.db'
    database = Database(str(path))
    storage = TaskStorage(database)
    storage.enqueue('scan', {})
    storage.enqueue('format', {'barcode': 'TPN001L9'})
    for name in tmp_path.joinpath('state').glob('p.db*'):
        name.unlink()
    if how == 'replaced':  # e.g. an older backup copied over it
        Database(str(path)).close()
    with pytest.raises(DatabaseUnusable) as caught:
        storage.enqueue('scan', {})
    [rescued] = tmp_path.joinpath('state').glob('p.db.rescued-*')
    word = 'deleted' if how == 'deleted' else 'replaced by another file'
    assert caught.value.message == (
        f'the database {path} was {word} while the service ran; the catalog as the '
        f'service had it is saved in {rescued}: stop the service, move that file to '
        f'{path} and start it again'
    )
    with pytest.raises(DatabaseUnusable):  # and so is every later use
        storage.list()
    database.close()
    copy = Database(str(rescued))
    assert [(task.id, task.kind) for task in TaskStorage(copy).list()] == [(1, 'scan'), (2, 'format')]
    copy.close()


def test_an_overwritten_header_is_seen_by_the_header_check(tmp_path):
    path = tmp_path / 'p.db'
    database = Database(str(path))
    database.check(header=True)
    overwrite(path, 0, b'garbage garbage!')
    with pytest.raises(DatabaseUnusable, match=rf'^the database {path} is corrupt \(its header was overwritten\): '):
        database.check(header=True)
    database.close()


@pytest.mark.parametrize('left', ['nothing', 'empty file'])
def test_a_missing_database_in_a_used_state_directory_is_not_silently_recreated(tmp_path, left):
    path = tmp_path / 'state' / 'p.db'
    catalog_with_tasks(str(path), 1)
    (tmp_path / 'state' / 'p.db.lock').touch()  # as the service leaves it
    path.unlink()
    if left == 'empty file':
        path.touch()
    with pytest.raises(DatabaseUnusable) as caught:
        Database(str(path), create=False)
    assert caught.value.message == (
        f'the database {path} is missing, but its directory still holds p.db.lock, so it '
        f'was in use: {RESTORE}, or start the service once with --new-database to begin '
        'with an empty catalog'
    )
    fresh = Database(str(path), create=True)
    assert TaskStorage(fresh).list() == []
    fresh.close()


def test_a_bad_page_read_while_open_makes_the_database_unusable(tmp_path):
    path = tmp_path / 'p.db'
    catalog_with_tasks(str(path))
    database = Database(str(path))
    storage = TaskStorage(database)
    overwrite(path, 4096 * 2, b'\xa5' * (path.stat().st_size - 4096 * 3))
    database.query('PRAGMA shrink_memory')  # as in a catalog larger than SQLite's cache: pages are read again
    with pytest.raises(DatabaseUnusable) as caught:
        storage.list()
    line = f'the database {path} is corrupt (database disk image is malformed): {RESTORE}'
    assert caught.value.message == line
    with pytest.raises(DatabaseUnusable, match='^' + re.escape(line) + '$'):  # every later use too, writes included
        storage.enqueue('scan', {})
    database.close()
