"""The service's commands against the real list of task kinds: every kind a command can queue is
registered, every registered kind can be queued by a command, and an unknown kind is refused."""

import time
from types import SimpleNamespace

import pytest

from pytarchive.checks import CheckFailed
from pytarchive.service.commands import BadRequest, Commands, Queued
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


def test_tapes_named_twice_a_part_that_is_not_there_and_a_copy_of_a_folder_in_parts_are_refused(storage, db, tmp_path):
    config = SimpleNamespace(path='/etc/pytarchive/pytarchive.conf', export=SimpleNamespace(to='10.0.0.0/8'))
    commands = Commands(QueueApi(storage, REGISTRY), db, config)
    whole, spread = str(tmp_path / 'whole'), str(tmp_path / 'spread')
    with db.transaction() as conn:
        conn.execute("INSERT INTO tapes (barcode) VALUES ('TPN001L9'), ('TPN002L9')")
        for path in (whole, spread):
            conn.execute(
                'INSERT INTO folders (path, tape, tape_path, state, created) '
                "VALUES (?, 'TPN001L9', 'x', 'archived', '2026-01-01')",
                (path,),
            )
        conn.execute(
            'INSERT INTO parts (folder, part, tape, tape_path, first_path, last_path, state, last) VALUES '
            "(2, 1, 'TPN001L9', 'x', 'a', 'm', 'archived', 0), (2, 2, 'TPN002L9', 'x', 'n', 'z', 'archived', 1)"
        )
    with pytest.raises(BadRequest, match=r'^TPN001L9, tpn001l9: a tape is named twice'):
        commands.handle('archive', {'path': whole, 'barcode': 'TPN001L9, tpn001l9'})
    with pytest.raises(BadRequest, match=r'was archived whole to one tape: it has no part 2$'):
        commands.handle('explore', {'path': whole, 'part': 2})
    with pytest.raises(BadRequest, match=r'was archived in 2 parts: --part 1 to 2$'):
        commands.handle('explore', {'path': spread, 'part': 3})
    assert commands.handle('explore', {'path': spread, 'part': 2}).task.args == {'path': spread, 'part': 2}
    with pytest.raises(CheckFailed, match=r'was archived across several tapes: pytarchive copy copies folders'):
        commands.handle('copy', {'path': spread, 'barcode': 'TPN002L9'})
    assert storage.list() == [storage.get(1)]  # only the explore of part 2 was queued
