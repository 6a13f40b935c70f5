"""pytarchive restore against a hostile destination, a folder 1,000 levels deep, and kill -9 at each step.

The service runs as root; the destination belongs to an unprivileged user (`nobody`) who plants
links before the restore and swaps a folder for a link while it runs, as a real process with
that user's uid. Nothing outside the destination may change and no entry may change owner.
"""

import re
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import blake3
import pytest

from tests.pytarchive.rig import TAPE, Rig, archived, formatted_rig, queued_id

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
]  # the virtual library mounts its tapes; restores chown to other users; each takes seconds to minutes

NOBODY = 65534
BIG = 150_000_000  # a first file that keeps the restore busy while the user acts


def describe(root: Path) -> dict:
    """Every entry below root, hidden ones too: kind, owner, mode, exact mtime, content or target.

    A stack, not recursion: the deep test's folders nest deeper than Python's call depth."""
    found, pending = {}, ['']
    while pending:
        relative = pending.pop()
        for entry in os.scandir(os.path.join(root, relative)):
            path = os.path.join(relative, entry.name)
            info = entry.stat(follow_symlinks=False)
            common = (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), info.st_mtime_ns)
            if stat.S_ISLNK(info.st_mode):
                found[path] = ('link', os.readlink(entry.path), info.st_uid, info.st_gid)
            elif stat.S_ISDIR(info.st_mode):
                found[path] = ('dir', *common)
                pending.append(path)
            else:
                with open(entry.path, 'rb') as file:
                    found[path] = ('file', blake3.blake3(file.read()).hexdigest(), *common)
    return found


def differences(found: dict, expected: dict) -> list:
    """What differs between two describe() results. Modification times may differ by under a
    microsecond: the manifest keeps them as float seconds (about 240 ns apart at today's dates)."""
    wrong = [
        (path, found.get(path), expected.get(path))
        for path in sorted(set(found) | set(expected))
        if path not in found or path not in expected
    ]
    for path in sorted(set(found) & set(expected)):
        one, other = found[path], expected[path]
        if one[0] == 'link' or other[0] == 'link':
            close = one == other
        else:
            close = one[:-1] == other[:-1] and abs(one[-1] - other[-1]) < 1000
        if not close:
            wrong.append((path, one, other))
    return wrong


def as_nobody(script: str) -> None:
    """Run a shell script as the unprivileged user (a real process with its uid and gid)."""
    subprocess.run(['sh', '-ec', script], user=NOBODY, group=NOBODY, check=True, timeout=30)


@pytest.fixture
def place():
    """A folder the unprivileged user can reach (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix='pytarchive-restore-', dir='/tmp'))
    path.chmod(0o711)
    yield path
    subprocess.run(['rm', '-rf', str(path)], check=True)


def users_tree(root: Path, small_files: int = 200) -> Path:
    """The user's home folder as archived: a big file first, small ones, a link, a last folder."""
    (root / 'projects').mkdir(parents=True)
    with open(root / 'aaa big.bin', 'wb') as big:
        big.truncate(BIG)
    for index in range(small_files):
        (root / 'projects' / f'{index}.txt').write_text(f'{index}\n')
    (root / 'zz last').mkdir()
    (root / 'zz last' / 'notes.txt').write_text('my notes\n')
    (root / 'link').symlink_to('projects/0.txt')
    (root / 'projects' / '1.txt').chmod(0o600)
    for entry in [*root.rglob('*'), root]:
        os.lchown(entry, NOBODY, NOBODY)
    return root


def victim(place: Path) -> Path:
    """Root's folder outside the destination, with a secret in it."""
    secrets = place / 'root only'
    secrets.mkdir(mode=0o755)
    (secrets / 'shadow').write_text('root:secret\n')
    (secrets / 'shadow').chmod(0o600)
    return secrets


def users_destination(place: Path) -> Path:
    destination = place / 'destination'
    destination.mkdir()
    os.chown(destination, NOBODY, NOBODY)
    return destination


def wait_for_step(rig, task_id: int, step: str, timeout: float = 120) -> dict:
    """Poll the task's row in the database itself (far faster than the client) until it is at step."""
    deadline = time.monotonic() + timeout
    db = sqlite3.connect(f'file:{rig.database}?mode=ro', uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        while True:
            row = dict(db.execute('SELECT * FROM tasks WHERE id = ?', (task_id,)).fetchone())
            if row['step'] == step and row['state'] == 'running':
                return row
            assert row['state'] in ('queued', 'running') and time.monotonic() < deadline, (step, row)
            time.sleep(0.001)
    finally:
        db.close()


def without_links_planted(found: dict) -> dict:
    return {path: entry for path, entry in found.items() if not os.path.basename(path).startswith('.pytarchive-')}


@pytest.mark.parametrize('packed', [False, True], ids=['files', 'packed'])
def test_links_planted_at_the_temporary_names_are_never_written_through(make_rig, place, packed):
    rig = formatted_rig(make_rig, general='pack_threshold = 3' if packed else '')
    folder = users_tree(place / 'home')
    before = describe(folder)
    archived(rig, folder)
    secrets = victim(place)
    untouched = describe(place / 'root only'), os.lstat(secrets)
    destination = users_destination(place)
    task_id = max(rig.tasks()) + 1
    # Every name the restore used to write to (predictable: task id and a counter), linked to root's secret.
    names = [f'.pytarchive-{task_id}-{n}' for n in range(300)] + [f'.pytarchive-restore-{task_id}']
    as_nobody(' && '.join(f"ln -s '{secrets}/shadow' '{destination}/{name}'" for name in names))

    out = rig.ok('restore', str(folder), '--to', str(destination), '--wait')
    assert 'verified' in out
    assert (describe(place / 'root only'), os.lstat(secrets)) == untouched
    assert (secrets / 'shadow').read_text() == 'root:secret\n'
    restored = describe(destination)
    assert differences(without_links_planted(restored), before) == []
    assert all(restored[name] == ('link', f'{secrets}/shadow', NOBODY, NOBODY) for name in names)  # hers, left alone


@pytest.mark.parametrize('packed', [False, True], ids=['files', 'packed'])
def test_a_folder_swapped_for_a_link_during_the_restore_is_never_written_through(make_rig, place, packed):
    rig = formatted_rig(make_rig, general='pack_threshold = 3' if packed else '')
    folder = users_tree(place / 'home')
    archived(rig, folder)
    secrets = victim(place)
    untouched = describe(place / 'root only'), os.lstat(secrets)
    outside = describe(folder)
    destination = users_destination(place)
    as_nobody(f"mkdir '{destination}/zz last'")  # as the check sees it before the tape is loaded: a folder

    task_id = queued_id(rig.ok('restore', str(folder), '--to', str(destination)))
    wait_for_step(rig, task_id, 'unpacking' if packed else 'restoring')
    as_nobody(f"cd '{destination}' && mv 'zz last' 'zz moved' && ln -s '{secrets}' 'zz last'")

    task = rig.wait_for({task_id: {'done', 'failed'}}, timeout=120)[task_id]
    assert task['state'] == 'failed', task
    assert 'zz last' in task['error'] and 'is in the way' in task['error'] and '\n' not in task['error']
    assert (describe(place / 'root only'), os.lstat(secrets)) == untouched
    assert describe(folder) == outside
    left = describe(destination)
    assert left['zz last'] == ('link', str(secrets), NOBODY, NOBODY)
    assert all(
        entry[-4:-2] == (NOBODY, NOBODY) if entry[0] != 'link' else entry[2:] == (NOBODY, NOBODY)
        for entry in left.values()
    ), left  # nothing changed owner, nothing of root's left behind
    assert not any(os.path.basename(path).startswith('.pytarchive') for path in left)
    assert rig.drive().barcode is None and not rig.mounted()


def test_a_packed_folder_1000_levels_deep_comes_back_with_its_folders_metadata(make_rig, place):
    rig = formatted_rig(make_rig, general='pack_threshold = 3')
    folder = place / 'deep'  # outside tmp_path: pytest's own cleanup recurses and would fail on it
    levels = [folder / ('d/' * depth) for depth in range(1001)]
    for level in levels:  # one at a time: pathlib's and os's makedirs recurse
        level.mkdir()
    for depth in range(0, 1001, 100):
        (levels[depth] / 'f').write_text(f'level {depth}\n')
    for depth, level in reversed(list(enumerate(levels[1:], 1))):  # deepest first: children change mtimes
        level.chmod(0o750 if depth % 2 else 0o755)
        os.utime(level, ns=(1_600_000_000_000_000_000 + depth, 1_500_000_000_123_456_789 + depth))
    before = describe(folder)
    archived(rig, folder)

    restored = place / 'restored'
    out = rig.ok('restore', str(folder), '--to', str(restored), '--wait')
    assert f'restored from {TAPE} to {restored}: ' in out and ' 0 overwritten, 0 skipped' in out
    assert differences(describe(restored), before) == []


# -- kill -9 at each step of a restore, then requeue -----------------------------------------------


def owners_and_modes_tree(root: Path, folders: int) -> Path:
    """Many folders and a big file (so that each step lasts long enough to be killed in), owners,
    modes, a read-only folder."""
    root.mkdir()
    with open(root / 'big.bin', 'wb') as big:
        big.truncate(BIG // 2)
    for index in range(folders):
        sub = root / f'folder {index:04d}'
        sub.mkdir()
        (sub / 'a.txt').write_text(f'a {index}\n')
        (sub / 'b.bin').write_bytes(os.urandom(100))
        (sub / 'link').symlink_to('a.txt')
        os.lchown(sub / 'a.txt', NOBODY, NOBODY)
        os.lchown(sub / 'link', 1234, 5678)
        if index % 2:
            os.chown(sub, 1234, 5678)
        (sub / 'b.bin').chmod(0o640)
        os.utime(sub / 'a.txt', ns=(1_600_000_000_000_000_000, 1_400_000_000_000_000_000 + index))
    read_only = root / 'folder 0001'
    read_only.chmod(0o555)
    for sub in root.glob('folder *'):
        os.utime(sub, ns=(1_600_000_000_000_000_000, 1_450_000_000_000_000_000))
    return root


@pytest.fixture(scope='module')
def archived_twice(tmp_path_factory):
    """One library with a folder archived file by file and one archived packed."""
    base = tmp_path_factory.mktemp('kill')
    rig = Rig(base, general='pack_threshold = 3000')
    try:
        rig.start()
        rig.ok('format', TAPE, '--wait')
        folders = {
            'files': owners_and_modes_tree(base / 'files', 600),
            'packed': owners_and_modes_tree(base / 'packed', 2000),
        }
        for folder in folders.values():
            archived(rig, folder)
        yield rig, folders, {name: describe(folder) for name, folder in folders.items()}
    finally:
        rig.close()


@pytest.mark.parametrize(
    'kind, step',
    [
        ('files', 'loading TPN001L9'),
        ('files', 'restoring'),
        ('files', 'setting folder metadata'),
        ('packed', 'loading TPN001L9'),
        ('packed', 'unpacking'),
        ('packed', 'moving into place'),
        ('packed', 'setting folder metadata'),
    ],
)
def test_kill_at_a_restore_step_then_requeue_restores_exactly(archived_twice, tmp_path, kind, step):
    rig, folders, before = archived_twice
    destination = tmp_path / 'restored'
    task_id = queued_id(rig.ok('restore', str(folders[kind]), '--to', str(destination)))
    # Frozen before the look, so the task cannot end between the look and the kill.
    rig.freeze_when(task_id, lambda state, now: state == 'running' and now == step, every=0.001)
    rig.crash()
    task = rig.restart_and_requeue(task_id, done_at_kill=step == 'setting folder metadata')  # the last step
    assert task['state'] == 'done', task
    entries = sum(entry[0] in ('file', 'link') for entry in before[kind].values())
    # Killed once every entry was placed, the requeued run has nothing to write: the tape stays home.
    assert task['result'].startswith(
        (f'{folders[kind]} restored from {TAPE} to {destination}: ', f'{folders[kind]}: nothing')
    )
    written, overwritten, skipped = map(
        int, re.search(r'(\d+) written, (\d+) overwritten, (\d+) skipped', task['result']).groups()
    )
    assert written + skipped == entries and overwritten == 0  # what the first run placed is skipped, not counted again
    assert task['result'].endswith((', verified', 'the tape was not loaded'))
    assert differences(describe(destination), before[kind]) == []
    assert rig.drive().barcode is None and not rig.mounted()
    shutil.rmtree(destination)


# -- pytarchive.safefs on its own ----------------------------------------------------------------


def open_descriptors() -> int:
    return len(os.listdir('/proc/self/fd'))


def test_a_tree_1000_levels_deep_is_walked_with_a_bounded_number_of_descriptors(place):
    from pytarchive import safefs

    folder = place / 'deep'
    folder.mkdir()
    with safefs.Tree(safefs.open_destination(str(folder), create=False)) as tree:
        before = open_descriptors()
        deepest = '/'.join(['d'] * 1000)
        fd = tree.folder(deepest, create=True)
        assert open_descriptors() - before < 1000 // 16 + 4
        os.close(os.open('f', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=fd))
        for depth in range(999, 0, -1):  # back up, as the folder metadata step walks
            assert tree.folder('/'.join(['d'] * depth)) is not None
        assert open_descriptors() - before < 1000 // 16 + 4
        safefs.remove_contents(tree.root)
    assert os.listdir(folder) == []


def test_a_link_on_the_way_to_the_destination_is_followed_only_if_root_alone_could_have_made_it(place):
    from pytarchive import safefs

    (place / 'real').mkdir()
    (place / 'users').mkdir()
    os.chown(place / 'users', NOBODY, NOBODY)
    (place / 'by root').symlink_to('real')  # in a folder only root can write
    fd = safefs.open_destination(f'{place}/by root/made', create=True)
    os.close(fd)
    assert (place / 'real' / 'made').is_dir()

    as_nobody(f"ln -s '{place}/real' '{place}/users/by nobody'")
    os.symlink(place / 'real', place / 'users' / 'by root in her folder')
    for planted in ('by nobody', 'by root in her folder'):
        with pytest.raises(safefs.InTheWay) as refused:
            safefs.open_destination(f'{place}/users/{planted}/sub', create=True)
        assert refused.value.path == f'{place}/users/{planted}' and refused.value.why == 'a link'
    assert os.listdir(place / 'real') == ['made']


def test_leftover_staging_folders_are_removed_but_look_alikes_a_user_made_are_not(place):
    from pytarchive import safefs

    destination = users_destination(place)
    secrets = victim(place)
    root = safefs.open_destination(str(destination), create=False)
    try:
        name, fd = safefs.private_folder(root, '.pytarchive-9-')
        os.makedirs(f'/proc/self/fd/{fd}/a/b')
        os.close(fd)
        as_nobody(
            f"cd '{destination}' && mkdir .pytarchive-9-hers && touch .pytarchive-9-hers/keep && "
            f"ln -s '{secrets}' .pytarchive-9-link"
        )
        safefs.remove_private_folders(root, '.pytarchive-9-')
    finally:
        os.close(root)
    assert sorted(os.listdir(destination)) == ['.pytarchive-9-hers', '.pytarchive-9-link']
    assert os.listdir(destination / '.pytarchive-9-hers') == ['keep'] and os.listdir(secrets) == ['shadow']


def test_unpack_into_a_descriptor_writes_into_that_folder_whatever_its_name_leads_to_now(tmp_path):
    from pytarchive import packing

    tree = tmp_path / 'tree'
    (tree / 'sub').mkdir(parents=True)
    (tree / 'sub' / 'file.txt').write_text('payload\n')
    archive = str(tmp_path / 'tree.tar.zst')
    packing.pack(str(tree), ['sub', 'sub/file.txt'], archive)
    staging, elsewhere = tmp_path / 'staging', tmp_path / 'elsewhere'
    staging.mkdir()
    elsewhere.mkdir()
    fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    try:
        staging.rename(tmp_path / 'moved')
        staging.symlink_to(elsewhere)  # the name now leads elsewhere; the descriptor does not
        packing.unpack(archive, fd)
    finally:
        os.close(fd)
    assert (tmp_path / 'moved' / 'sub' / 'file.txt').read_text() == 'payload\n'
    assert list(elsewhere.iterdir()) == []
