"""The database and the task queue without a library: storage, consumer, api, schema versions."""

import re
import sqlite3
import threading
import time

import pytest

from pytarchive.db import SCHEMA_VERSION, Database, DatabaseError, DatabaseUnusable
from pytarchive.library.errors import MtxError
from pytarchive.queue import (DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, Consumer, QueueApi, Registry,
                              RequeueError, TaskStorage, UnknownTask)


@pytest.fixture
def db(tmp_path):
    database = Database(str(tmp_path / 'state' / 'pytarchive.db'))
    yield database
    database.close()


@pytest.fixture
def storage(db):
    return TaskStorage(db)


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


def test_a_file_that_is_not_a_database_is_one_line(tmp_path):
    path = tmp_path / 'p.db'
    path.write_text('not sqlite ' * 100)
    with pytest.raises(DatabaseUnusable) as caught:
        Database(str(path))
    assert caught.value.message == (f'the database {path} is corrupt (file is not a database): restore it from '
                                    'the backup of its state directory (see README: State)')


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


def test_tasks_are_claimed_in_id_order_and_ids_are_never_reused(db, storage):
    first = storage.enqueue('format', {'barcode': 'TPN001L9'})
    second = storage.enqueue('check', {'barcode': 'TPN001L9'})
    assert (first.id, second.id) == (1, 2)
    assert first.state == QUEUED and first.args == {'barcode': 'TPN001L9'}
    claimed = storage.claim_next()
    assert claimed.id == 1 and claimed.state == RUNNING and claimed.started and claimed.attempts == 1
    storage.mark_done(1, 'TPN001L9 formatted')
    assert storage.claim_next().id == 2
    assert storage.claim_next() is None
    with db.transaction() as conn:
        conn.execute('DELETE FROM tasks')
    assert storage.enqueue('scan', {}).id == 3


def test_progress_failure_and_interruption_are_recorded(storage):
    task = storage.enqueue('check', {'barcode': 'TPN001L9'})
    storage.claim_next()
    storage.set_progress(task.id, bytes_total=1000, files_total=3)
    storage.set_progress(task.id, bytes_done=400, files_done=1)
    now = storage.get(task.id)
    assert (now.bytes_done, now.bytes_total, now.files_done, now.files_total) == (400, 1000, 1, 3)
    storage.mark_failed(task.id, 'mtx: Drive 0 Full')
    failed = storage.get(task.id)
    assert failed.state == FAILED and failed.error == 'mtx: Drive 0 Full' and failed.finished


def test_leftover_running_tasks_become_interrupted(storage):
    storage.enqueue('scan', {})
    storage.enqueue('scan', {})
    storage.claim_next()
    assert storage.interrupt_leftovers() == [1]
    assert [(task.id, task.state) for task in storage.list()] == [(1, INTERRUPTED), (2, QUEUED)]
    assert storage.get(1).error == 'the service stopped while this task ran'


def test_requeue_takes_only_failed_or_interrupted_tasks_all_or_nothing(storage):
    for _ in range(4):
        storage.enqueue('scan', {})
    storage.claim_next()
    storage.mark_failed(1, 'boom')
    storage.claim_next()
    storage.mark_done(2)
    storage.claim_next()
    storage.interrupt_leftovers()  # 3
    storage.set_progress(1, bytes_done=50, files_done=2)
    with pytest.raises(RequeueError) as caught:
        storage.requeue([1, 2, 9])
    assert caught.value.message == ('nothing requeued: task 2 is done; task 9 does not exist '
                                    '(only failed or interrupted tasks can be requeued)')
    assert storage.get(1).state == FAILED
    assert storage.requeue([3, 1]) == [1, 3]
    again = storage.get(1)
    assert (again.state, again.error, again.bytes_done, again.files_done, again.started) == (QUEUED, None, 0, 0, None)
    assert storage.claim_next().id == 1  # back in its place in the queue, before task 4


def test_requeue_all(storage):
    for _ in range(3):
        storage.enqueue('scan', {})
    storage.claim_next()
    storage.mark_failed(1, 'x')
    storage.claim_next()
    storage.mark_interrupted(2, 'stopped')
    assert storage.requeue_all() == [1, 2]
    assert [task.state for task in storage.list()] == [QUEUED] * 3
    assert storage.requeue_all() == []


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError('condition not reached')


def test_consumer_runs_tasks_one_at_a_time_in_order_and_records_the_outcome(storage):
    registry = Registry()
    ran, active, overlap = [], [0], []

    @registry.task('step')
    def step(ctx, name):
        active[0] += 1
        overlap.append(active[0])
        time.sleep(0.02)
        ctx.progress(files_done=1, files_total=1)
        ran.append(name)
        active[0] -= 1
        return f'{name} ok'

    @registry.task('mtx-fails')
    def mtx_fails(ctx):
        raise MtxError('Drive 0 Full (Storage Element 3 loaded)', command=['mtx', '-f', '/dev/sch0', 'load', '3', '0'],
                       sense_key='Illegal Request', asc='53', ascq='03', mtx_reported=True)

    @registry.task('bug')
    def bug(ctx):
        return {}['missing']

    consumer = Consumer(storage, registry, ['drive-0'])
    api = QueueApi(storage, registry, consumer)
    consumer.start()
    try:
        for name in 'abc':
            api.submit('step', name=name)
        api.submit('mtx-fails')
        api.submit('bug')
        _wait_for(lambda: all(task.state in (DONE, FAILED) for task in storage.list()))
    finally:
        consumer.stop()
    assert ran == ['a', 'b', 'c'] and max(overlap) == 1
    tasks = storage.list()
    assert [(task.state, task.result) for task in tasks[:3]] == [(DONE, 'a ok'), (DONE, 'b ok'), (DONE, 'c ok')]
    assert tasks[0].files_done == 1
    assert tasks[3].state == FAILED
    assert tasks[3].error.startswith('mtx -f /dev/sch0 load 3 0: Drive 0 Full (Storage Element 3 loaded) '
                                     '(Sense Key=Illegal Request, ASC=53, ASCQ=03)')
    assert 'do not power-cycle' in tasks[3].error
    assert tasks[4].error == "unexpected KeyError: 'missing'"


def test_stopping_interrupts_a_task_at_its_next_checkpoint_and_takes_no_new_one(storage):
    registry = Registry()
    started = threading.Event()
    cleaned_up = []

    @registry.task('long')
    def long(ctx):
        started.set()
        try:
            while True:
                ctx.checkpoint()
                time.sleep(0.01)
        finally:
            cleaned_up.append(ctx.task.id)

    consumer = Consumer(storage, registry, ['drive-0'])
    api = QueueApi(storage, registry, consumer)
    consumer.start()
    api.submit('long')
    api.submit('long')
    assert started.wait(5)
    consumer.stop()
    assert [(task.state, task.error) for task in storage.list()] == [
        (INTERRUPTED, 'the service was stopped before this task finished'), (QUEUED, None)]
    assert cleaned_up == [1]


def test_submit_refuses_unknown_kinds_and_wrong_arguments(storage):
    registry = Registry()

    @registry.task('format')
    def format_tape(ctx, barcode):
        return None

    api = QueueApi(storage, registry)
    with pytest.raises(UnknownTask, match="unknown task kind 'erase'"):
        api.submit('erase')
    with pytest.raises(UnknownTask, match="task format: missing a required argument: 'barcode'"):
        api.submit('format')
    assert storage.list() == []
    assert api.submit('format', barcode='TPN001L9').id == 1
    with pytest.raises(ValueError, match='registered twice'):
        registry.task('format')(format_tape)


# -- a database that is deleted, replaced or corrupted ----------------------------------------------

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
    assert caught.value.message == (f'the database {path} was {word} while the service ran; the catalog as the '
                                    f'service had it is saved in {rescued}: stop the service, move that file to '
                                    f'{path} and start it again')
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
    assert caught.value.message == (f'the database {path} is missing, but its directory still holds p.db.lock, so it '
                                    f'was in use: {RESTORE}, or start the service once with --new-database to begin '
                                    'with an empty catalog')
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
