"""pytarchive.packing: a packed folder comes back entry for entry, and failures are one-line errors."""

import io
import os
import stat
import subprocess

import blake3
import pytest

from common.errors import ToolError
from pytarchive import packing, transfer
from tests.pytarchive.rig import archive_members

pytestmark = pytest.mark.root  # tar and zstd: system packages
FILES = {
    'plain.txt': b'plain\n',
    'with space/ünï cödé.txt': 'grüße\n'.encode(),
    'sub/other.txt': b'other\n',
    'sub/dir/deep.bin': bytes(range(256)) * 40,
    'sub/dir/deeper/-dash': b'starts with a dash\n',
}
DIRS = ['with space', 'sub', 'sub/dir', 'sub/dir/deeper', 'empty dir']
LINKS = {'link': 'plain.txt', 'dangling': 'nowhere/at all'}


def walk(top):
    """Every entry under top, relative, lazily, parents first (as the archive task walks)."""
    pending = ['']
    while pending:
        folder = pending.pop()
        for entry in sorted(os.scandir(os.path.join(top, folder)), key=lambda entry: entry.name):
            name = os.path.join(folder, entry.name)
            yield name
            if entry.is_dir(follow_symlinks=False):
                pending.append(name)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / 'folder'
    for name in DIRS:
        (root / name).mkdir(parents=True, exist_ok=True)
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    for name, target in LINKS.items():
        os.symlink(target, root / name)
    os.chmod(root / 'plain.txt', 0o640)
    os.chmod(root / 'sub/dir/deep.bin', 0o755)
    os.chown(root / 'sub/other.txt', 1234, 5678)
    for number, name in enumerate([*FILES, *reversed(DIRS)]):  # directories last: files change their mtime
        os.utime(root / name, ns=(1_600_000_000_123_456_789 + number, 1_500_000_000_987_654_321 + number * 1_000_003))
    return root


def describe(root):
    """Each entry's kind, mode, owner, mtime and contents or link target.

    Whole-second mtimes: what the GNU tar format keeps (restore sets the manifest's exact ones)."""
    found = {}
    for name in walk(root):
        info = os.lstat(os.path.join(root, name))
        if stat.S_ISLNK(info.st_mode):
            found[name] = ('link', os.readlink(os.path.join(root, name)))
        elif stat.S_ISDIR(info.st_mode):
            found[name] = ('dir', stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, info.st_mtime_ns // 10**9)
        else:
            with open(os.path.join(root, name), 'rb') as file:
                found[name] = (
                    'file',
                    stat.S_IMODE(info.st_mode),
                    info.st_uid,
                    info.st_gid,
                    info.st_mtime_ns // 10**9,
                    file.read(),
                )
    return found


def test_a_packed_folder_unpacks_to_the_same_entries(tree, tmp_path):
    archive = str(tmp_path / 'folder.tar.zst')
    progress = []

    result = packing.pack(str(tree), walk(str(tree)), archive, on_progress=progress.append)

    assert result.size == os.path.getsize(archive) > 0
    assert (result.vanished, result.changed) == ([], [])
    assert progress[-1] == len(FILES) + len(DIRS) + len(LINKS)
    assert not os.path.exists(archive + '.partial')
    assert sorted(archive_members(archive)) == sorted(walk(str(tree)))
    staging = tmp_path / 'staging'
    staging.mkdir()
    digest = packing.unpack(archive, str(staging))
    with open(archive, 'rb') as file:
        assert digest == blake3.blake3(file.read()).hexdigest() == transfer.hash_file(archive)
    restored = describe(staging)
    assert restored == describe(tree)
    assert restored['dangling'] == ('link', 'nowhere/at all')
    assert restored['sub/other.txt'][2:4] == (1234, 5678)
    assert restored['empty dir'][0] == 'dir'


def test_unpack_takes_the_archive_bytes_in_chunks_too(tree, tmp_path):
    archive = str(tmp_path / 'folder.tar.zst')
    packing.pack(str(tree), walk(str(tree)), archive)
    with open(archive, 'rb') as file:
        data = file.read()
    staging = tmp_path / 'staging'
    staging.mkdir()

    digest = packing.unpack((data[start : start + 100] for start in range(0, len(data), 100)), str(staging))

    assert digest == blake3.blake3(data).hexdigest()
    assert describe(staging) == describe(tree)


def test_a_member_gone_before_tar_reads_it_is_reported_and_the_rest_is_packed(tree, tmp_path):
    archive = str(tmp_path / 'folder.tar.zst')
    members = ['plain.txt', 'ghost.txt', 'gone: wïth spåce\\and\nnewline', 'gone dir/file', 'sub']

    result = packing.pack(str(tree), iter(members), archive)

    assert result.vanished == ['ghost.txt', 'gone: wïth spåce\\and\nnewline', 'gone dir/file']
    assert archive_members(archive) == ['plain.txt', 'sub']


def test_unpack_of_some_members_extracts_only_them(tree, tmp_path):
    archive = str(tmp_path / 'folder.tar.zst')
    packing.pack(str(tree), walk(str(tree)), archive)
    staging = tmp_path / 'staging'
    staging.mkdir()

    packing.unpack(archive, str(staging), members=['sub/dir', 'link'])

    assert sorted(describe(staging)) == [
        'link',
        'sub',
        'sub/dir',
        'sub/dir/deep.bin',
        'sub/dir/deeper',
        'sub/dir/deeper/-dash',
    ]
    assert describe(staging)['sub/dir/deep.bin'] == describe(tree)['sub/dir/deep.bin']


def test_unpack_of_no_members_extracts_nothing_but_reads_the_archive(tree, tmp_path):
    archive = str(tmp_path / 'folder.tar.zst')
    packing.pack(str(tree), walk(str(tree)), archive)
    staging = tmp_path / 'staging'
    staging.mkdir()

    assert packing.unpack(archive, str(staging), members=[]) == transfer.hash_file(archive)
    assert os.listdir(staging) == []


def test_unpack_of_a_member_not_in_the_archive_fails(tree, tmp_path):
    archive = str(tmp_path / 'folder.tar.zst')
    packing.pack(str(tree), walk(str(tree)), archive)
    staging = tmp_path / 'staging'
    staging.mkdir()

    with pytest.raises(ToolError, match='not-there: Not found in archive'):
        packing.unpack(archive, str(staging), members=['not-there'])


def test_a_damaged_archive_fails_to_unpack_and_its_digest_differs(tmp_path):
    root = tmp_path / 'folder'
    root.mkdir()
    for number in range(20):
        (root / f'file{number}').write_bytes(os.urandom(20_000) + b'text ' * 4000)
    archive = str(tmp_path / 'folder.tar.zst')
    packing.pack(str(root), walk(str(root)), archive)
    good = transfer.hash_file(archive)
    with open(archive, 'r+b') as file:
        file.seek(os.path.getsize(archive) // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0xFF]))
    staging = tmp_path / 'staging'
    staging.mkdir()

    with pytest.raises(ToolError) as raised:
        packing.unpack(archive, str(staging))

    assert raised.value.message.startswith('zstd: ') and '\n' not in raised.value.message
    assert transfer.hash_file(archive) != good


@pytest.mark.parametrize('where', ['missing dir/folder.tar.zst', 'not a dir/folder.tar.zst'])
def test_pack_to_a_place_it_cannot_write_fails_and_leaves_nothing(tree, tmp_path, where):
    (tmp_path / 'not a dir').write_bytes(b'')
    output = str(tmp_path / where)

    with pytest.raises(ToolError, match='cannot create'):
        packing.pack(str(tree), walk(str(tree)), output)

    assert not os.path.exists(output) and not os.path.exists(output + '.partial')


def test_pack_of_a_missing_root_fails_with_tars_message_and_leaves_nothing(tmp_path):
    output = str(tmp_path / 'folder.tar.zst')

    with pytest.raises(ToolError, match='^tar: .*missing: Cannot open: No such file or directory$'):
        packing.pack(str(tmp_path / 'missing'), ['a', 'b'], output)

    assert os.listdir(tmp_path) == []


def test_a_failing_walk_stops_the_pack_and_leaves_nothing(tree, tmp_path):
    def walk_then_fail():
        yield 'plain.txt'
        raise PermissionError(13, 'Permission denied', 'sub')

    with pytest.raises(PermissionError):
        packing.pack(str(tree), walk_then_fail(), str(tmp_path / 'folder.tar.zst'))

    assert sorted(os.listdir(tmp_path)) == ['folder']


def test_a_member_that_exists_but_cannot_be_read_fails_the_pack(tmp_path):
    # Even root may not read a write-only sysctl: a real 'Cannot open: Permission denied' from tar.
    output = str(tmp_path / 'folder.tar.zst')

    with pytest.raises(ToolError, match='^tar: drop_caches: Warning: Cannot open: Permission denied$'):
        packing.pack('/proc/sys/vm', ['swappiness', 'drop_caches'], output)

    assert os.listdir(tmp_path) == []


def test_what_tar_says_about_members_is_read_back_with_their_exact_names():
    # Lines as GNU tar prints them in the C locale with --quoting-style=escape.
    said = io.BytesIO(
        b'tar: gone\\: f\\303\\274r \\\\ immer\\n: Warning: Cannot stat: No such file or directory\n'
        b'tar: moved/away: Warning: Cannot open: Not a directory\n'
        b'tar: growing.log: file changed as we read it\n'
        b'tar: shrinking.db: File shrank by 4096 bytes; padding with zeros\n'
        b"tar: Removing leading `/' from member names\n"
    )

    assert packing._read_messages(said) == (
        ['gone: f\u00fcr \\ immer\n', 'moved/away'],
        ['growing.log', 'shrinking.db'],
        None,
    )


def test_a_full_scratch_fails_the_pack_with_zstds_message_and_leaves_nothing(tmp_path):
    root = tmp_path / 'folder'
    root.mkdir()
    (root / 'noise.bin').write_bytes(os.urandom(3 << 20))  # incompressible: more than the 1 MiB below
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(scratch)], check=True)
    try:
        with pytest.raises(ToolError, match='^zstd: .*No space left on device'):
            packing.pack(str(root), ['noise.bin'], str(scratch / 'folder.tar.zst'))
        assert os.listdir(scratch) == []
    finally:
        subprocess.run(['umount', str(scratch)], check=True)
