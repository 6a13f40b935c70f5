"""The service's commands against the real list of task kinds: every kind a command can queue is
registered, every registered kind can be queued by a command, and an unknown kind is refused."""

import time
from types import SimpleNamespace

import pytest

from pytarchive.service.commands import Commands, Queued
from pytarchive.taskqueue import Consumer, QueueApi, UnknownTask
from pytarchive.tasks import REGISTRY

BARCODE = 'TPN001L9'


def test_every_kind_the_commands_queue_is_registered_and_every_registered_kind_is_queued(storage, db, tmp_path):
    config = SimpleNamespace(
        path='/etc/pytarchive/pytarchive.conf',
        export=SimpleNamespace(to='10.0.0.0/8'),
        general=SimpleNamespace(source_folders=(str(tmp_path),)),
    )
    commands = Commands(QueueApi(storage, REGISTRY), db, config)
    folder = str(tmp_path)
    requests = [
        ('scan', {}),
        ('format', {'barcode': BARCODE}),
        ('check', {'barcode': BARCODE}),
        ('prepare', {'path': folder, 'description': 'x'}),
        ('archive', {'path': folder, 'barcode': BARCODE}),
        ('copy', {'path': folder, 'barcode': 'TPN002L9'}),  # of the archive queued just before
        ('restore', {'path': folder}),
        ('explore', {'path': folder}),
        ('inventory', {}),
        ('verify', {'target': BARCODE}),
        ('import', {'barcode': BARCODE}),
    ]
    with db.transaction() as conn:  # what verify re-reads: an archive on that tape
        conn.execute('INSERT INTO tapes (barcode) VALUES (?)', (BARCODE,))
        conn.execute(
            "INSERT INTO folders (path, tape, state, created) VALUES ('/data/old', ?, 'archived', '2026-01-01')",
            (BARCODE,),
        )
    queued = [commands.handle(command, args) for command, args in requests]  # each checked as the service does
    assert all(isinstance(answer, Queued) for answer in queued)
    assert sorted(answer.task.kind for answer in queued) == REGISTRY.kinds()


def test_an_unknown_kind_is_refused_when_queued_and_fails_in_one_line_if_found_in_the_queue(storage):
    with pytest.raises(
        UnknownTask,
        match=r"^unknown task kind 'erase' \(known: archive, check, copy, explore, format, import, "
        r'inventory, prepare, restore, scan, verify\)$',
    ):
        QueueApi(storage, REGISTRY).submit('erase')
    assert storage.list() == []
    # A task of a kind this pytarchive no longer has, left in the database by another version.
    storage.enqueue('erase', {})
    consumer = Consumer(storage, REGISTRY, [None])
    consumer.start()
    try:
        deadline = time.monotonic() + 10
        while storage.get(1).state != 'failed':
            assert time.monotonic() < deadline, storage.get(1)
            time.sleep(0.01)
    finally:
        consumer.stop()
    assert storage.get(1).error.startswith("unknown task kind 'erase' (known: archive, ")
