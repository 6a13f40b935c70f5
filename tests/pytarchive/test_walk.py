"""What prepare records: the walk (links as links, parents first, odd files skipped, vanishing
entries left out) and the prepare task itself on a folder that changes while it is read."""

import os
import socket
import threading
from pathlib import Path

import pytest

from common.errors import ToolError
from pytarchive import config as configuration, folders, packing, prepare
from pytarchive.db import Database
from pytarchive.queue import TaskContext, TaskStorage
from pytarchive.walk import DIR, FILE, LINK, Walk


def tree(root: Path) -> Path:
    (root / 'b dir' / 'inner').mkdir(parents=True)
    (root / 'empty').mkdir()
    (root / 'a.txt').write_text('a')
    (root / 'b dir' / 'inner' / 'é.bin').write_bytes(b'x' * 1000)
    (root / 'to dir').symlink_to('b dir')
    (root / 'dangling').symlink_to('/no/such/place')
    return root


def test_entries_come_parents_first_and_links_are_never_followed(tmp_path):
    root = tree(tmp_path / 'data')
    entries = list(Walk(str(root)).entries())
    assert [(entry.path, entry.kind) for entry in entries] == [
        ('a.txt', FILE), ('b dir', DIR), ('b dir/inner', DIR), ('b dir/inner/é.bin', FILE),
        ('dangling', LINK), ('empty', DIR), ('to dir', LINK)]
    by_path = {entry.path: entry for entry in entries}
    assert by_path['to dir'].target == 'b dir' and by_path['dangling'].target == '/no/such/place'
    assert by_path['b dir/inner/é.bin'].size == 1000 and by_path['to dir'].size == 0


def test_sockets_are_skipped_and_vanished_entries_counted(tmp_path):
    root = tree(tmp_path / 'data')
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(root / 'app.sock'))
        walk = Walk(str(root))
        seen = []
        for entry in walk.entries():
            seen.append(entry.path)
            if entry.path == 'a.txt':  # listed with its siblings already; gone before they are read
                (root / 'dangling').unlink()
                (root / 'empty').rmdir()
    assert walk.skipped == ['app.sock']
    assert walk.vanished == ['dangling', 'empty']
    assert seen == ['a.txt', 'b dir', 'b dir/inner', 'b dir/inner/é.bin', 'to dir']


@pytest.fixture
def context(tmp_path):
    """A prepare task's context on a real database, with the config's scratch path in tmp_path."""
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    path = tmp_path / 'pytarchive.conf'
    path.write_text(f'[General]\nscratch_path = {scratch}\npack_threshold = 3\n'
                    '[Device]\nlibrary = /dev/sch0\ndrive_serial = X\n')
    config = configuration.load(str(path))
    db = Database(str(tmp_path / 'state.db'))
    storage = TaskStorage(db)
    resources = type('Resources', (), {'config': config, 'db': db})()

    def make(path: str) -> TaskContext:
        return TaskContext(storage.enqueue('prepare', {'path': path}), resources, storage, threading.Event())

    yield make
    db.close()


def test_a_file_deleted_while_the_folder_is_packed_is_left_out_of_the_manifest(context, tmp_path, monkeypatch):
    root = tree(tmp_path / 'busy folder')
    for index in range(5):
        (root / f'log {index}.txt').write_text(f'line {index}\n')
    real_pack = packing.pack

    def pack_while_a_user_deletes(folder, members, output, on_progress=None):
        def members_then_delete():
            for member in members:
                if member == 'log 4.txt':  # recorded by the walk, then deleted before tar reads it
                    (root / 'log 4.txt').unlink()
                yield member
                if member == 'a.txt':  # listed by the walk but deleted before the walk reads it
                    (root / 'log 3.txt').unlink()
        return real_pack(folder, members_then_delete(), output, on_progress)

    monkeypatch.setattr(packing, 'pack', pack_while_a_user_deletes)
    ctx = context(str(root))
    result = prepare.prepare(ctx, str(root), 'logs')
    assert 'packed into' in result and 'vanished' in result
    folder = folders.latest(ctx.resources.db, str(root), (folders.PREPARED,))
    recorded = {row['path'] for row in folders.entries(ctx.resources.db, folder['id'])}
    assert 'log 3.txt' not in recorded and 'log 4.txt' not in recorded and 'to dir' in recorded
    assert 'vanished while being read and are not in the manifest' in result
    assert folder['file_count'] == 5  # a.txt, é.bin, log 0-2
    assert sorted(packing.archive_members(folder['packed'])) == sorted(recorded)


def test_preparing_again_replaces_the_record_and_its_scratch_copy(context, tmp_path):
    root = tree(tmp_path / 'data')
    (root / 'more').write_text('1')
    (root / 'even more').write_text('2')
    first = prepare.prepare(context(str(root)), str(root))
    old_copy = first.split('packed into ')[1].split(' ')[0]
    assert os.path.exists(old_copy)
    prepare.prepare(context(str(root)), str(root))
    assert not os.path.exists(old_copy)
    db = context(str(root)).resources.db
    assert [row['state'] for row in db.query('SELECT state FROM folders')] == ['prepared']


def test_a_small_folder_is_not_packed(context, tmp_path):
    root = tmp_path / 'small'
    root.mkdir()
    (root / 'only one').write_text('1')
    assert prepare.prepare(context(str(root)), str(root)) == f'{root} prepared: 1 files, 1 B'
    assert os.listdir(tmp_path / 'scratch') == []


def test_folders_deeper_than_pythons_call_depth_are_walked(tmp_path):
    levels = [tmp_path / 'deep']
    levels[0].mkdir()
    for _ in range(1500):  # one mkdir at a time: os.makedirs (and shutil.rmtree) recurse too
        levels.append(levels[-1] / 'd')
        levels[-1].mkdir()
    try:
        entries = list(Walk(str(levels[0])).entries())
        assert len(entries) == 1500 and entries[-1].path == '/'.join(['d'] * 1500)
    finally:
        for level in reversed(levels):
            level.rmdir()


def test_a_name_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    root = tmp_path / 'old share'
    root.mkdir()
    with open(os.path.join(os.fsencode(root), b'caf\xe9.txt'), 'w') as latin1:
        latin1.write('1')
    with pytest.raises(ToolError) as refused:
        list(Walk(str(root)).entries())
    assert refused.value.message == f'{root}/caf\\udce9.txt: a name that is not UTF-8; rename it ' \
                                    f'(e.g. convmv -f latin1 -t utf8) and prepare again'
