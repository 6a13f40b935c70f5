"""The prepare task itself on a folder that changes while it is read, prepared again, or small
enough to stay unpacked (packing runs tar and zstd)."""

import os
import threading

import pytest

from common.errors import ToolError
from pytarchive import config as configuration, packing
from pytarchive.state import folders
from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskContext, TaskStorage
from pytarchive.tasks import prepare
from tests.pytarchive.rig import archive_members, tree

pytestmark = pytest.mark.root  # zstd: a system package


@pytest.fixture
def context(tmp_path):
    """A prepare task's context on a real database, with the config's scratch path in tmp_path."""
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    path = tmp_path / 'pytarchive.conf'
    path.write_text(
        f'[General]\nscratch_path = {scratch}\npack_threshold = 3\n[Device]\nlibrary = /dev/sch0\ndrive_serial = X\n'
    )
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
    result = prepare.run(ctx, str(root), 'logs')
    assert 'packed into' in result and 'vanished' in result
    folder = folders.latest(ctx.resources.db, str(root), (folders.PREPARED,))
    recorded = {row['path'] for row in folders.entries(ctx.resources.db, folder['id'])}
    assert 'log 3.txt' not in recorded and 'log 4.txt' not in recorded and 'to dir' in recorded
    assert 'vanished while being read and are not in the manifest' in result
    assert folder['file_count'] == 5  # a.txt, é.bin, log 0-2
    assert sorted(archive_members(folder['packed'])) == sorted(recorded)


def test_preparing_again_replaces_the_record_and_its_scratch_copy(context, tmp_path):
    root = tree(tmp_path / 'data')
    (root / 'more').write_text('1')
    (root / 'even more').write_text('2')
    first = prepare.run(context(str(root)), str(root))
    old_copy = first.split('packed into ')[1].split(' ')[0]
    assert os.path.exists(old_copy)
    prepare.run(context(str(root)), str(root))
    assert not os.path.exists(old_copy)
    db = context(str(root)).resources.db
    assert [row['state'] for row in db.query('SELECT state FROM folders')] == ['prepared']


def test_a_small_folder_is_not_packed(context, tmp_path):
    root = tmp_path / 'small'
    root.mkdir()
    (root / 'only one').write_text('1')
    assert prepare.run(context(str(root)), str(root)) == f'{root} prepared: 1 files, 1 B'
    assert os.listdir(tmp_path / 'scratch') == []


def test_names_that_ltfs_would_make_one_are_refused_unless_the_folder_is_packed(context, tmp_path):
    folder = tmp_path / 'from a mac'
    (folder / 'sub').mkdir(parents=True)
    (folder / 'sub' / 'caf\u00e9.txt').write_text('NFC')  # é as one code point
    (folder / 'sub' / 'cafe\u0301.txt').write_text('NFD')  # e and a combining accent: one name in NFC
    with pytest.raises(ToolError) as caught:
        prepare.run(context(str(folder)), str(folder))
    assert str(caught.value) == (
        f'sub/cafe\\u0301.txt and sub/caf\\xe9.txt in {folder} differ only in Unicode normalisation: LTFS stores '
        'names in NFC, so they would be one file on tape; rename one and prepare again'
    )
    for index in range(3):  # more files than pack_threshold: one tar.zst on tape, whose names LTFS never sees
        (folder / f'{index}.txt').write_text('x')
    assert 'packed into' in prepare.run(context(str(folder)), str(folder))
