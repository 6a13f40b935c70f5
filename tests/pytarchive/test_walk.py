"""What prepare records: the walk (links as links, parents first, odd files skipped, vanishing
entries left out, any depth, names that are not UTF-8 refused)."""

import os
import socket

import pytest

from common.errors import ToolError
from pytarchive.walk import DIR, FILE, LINK, Walk
from tests.pytarchive.rig import tree


def test_entries_come_parents_first_and_links_are_never_followed(tmp_path):
    root = tree(tmp_path / 'data')
    entries = list(Walk(str(root)).entries())
    assert [(entry.path, entry.kind) for entry in entries] == [
        ('a.txt', FILE),
        ('b dir', DIR),
        ('b dir/inner', DIR),
        ('b dir/inner/é.bin', FILE),
        ('dangling', LINK),
        ('empty', DIR),
        ('to dir', LINK),
    ]
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


@pytest.mark.slow
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
    assert (
        refused.value.message == f'{root}/caf\\udce9.txt: a name that is not UTF-8; rename it '
        f'(e.g. convmv -f latin1 -t utf8) and prepare again'
    )
