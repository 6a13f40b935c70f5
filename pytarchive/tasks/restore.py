"""`pytarchive restore PATH [--to DIR] [--only SUBPATH] [--force]`: bring an archived folder back.

Nothing gets its final name before its checksum matched: each file is written into a private
staging folder (mode 0700, random name) at the top of the destination, compared with the
manifest, given its owner, mode and time, and only then linked into place (renamed over what is
there with --force); a packed folder is unpacked into that staging folder, its archive's checksum
compared, and only then are its entries moved into place. Existing files are never overwritten
without --force: checked before the tape is loaded, and again as each entry is placed.

The destination may belong to a user who changes it while root restores into it. Every entry is
reached from folder descriptors without following links (pytarchive.safefs): a folder swapped for
a link stops the restore instead of sending files elsewhere. Each run first removes the staging
folders of this task's earlier runs, so a run cut short anywhere (kill -9 too) just runs again:
what is already in place exactly as archived is skipped.
"""

import contextlib
import os
import stat
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import blake3

from common.errors import ToolError
from pytarchive import packing, safefs, transfer
from pytarchive.checks import archived_folder, clean_subpath
from pytarchive.progress import Progress
from pytarchive.state import folders, parts
from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskContext
from pytarchive.units import human_bytes
from pytarchive.walk import DIR, FILE, LINK

_SHOWN = 5
Rows = Callable[[], Iterator[Dict]]


@dataclass
class Counts:
    """What a restore did with each file and link: written where nothing was, overwritten (only
    with --force, only where it differed), or skipped (already there exactly as archived)."""

    written: int = 0
    overwritten: int = 0
    skipped: int = 0
    bytes_written: int = 0

    def add(self, row: Dict, existed: bool) -> None:
        if existed:
            self.overwritten += 1
        else:
            self.written += 1
        self.bytes_written += row['size'] if row['kind'] == FILE else 0

    def merge(self, other: 'Counts') -> None:
        self.written += other.written
        self.overwritten += other.overwritten
        self.skipped += other.skipped
        self.bytes_written += other.bytes_written

    def text(self) -> str:
        return (
            f'{self.written} written, {self.overwritten} overwritten, {self.skipped} skipped (already identical), '
            f'{human_bytes(self.bytes_written)} written'
        )


def tapes_needed(db: Database, path: str, only: str = '', **_: object) -> List[str]:
    """The tapes a restore of path loads (for the queue's rule: one tape, one drive at a time)."""
    folder = folders.copy_to_read(db, archived_folder(db, path))
    only = clean_subpath(only)
    return [tape for tape, _, _, _ in _readings(db, folder, only, _cut_files(db, folder, only))]


def run(ctx: TaskContext, path: str, to: Optional[str] = None, only: str = '', force: bool = False) -> str:
    resources = ctx.resources
    folder = folders.copy_to_read(resources.db, archived_folder(resources.db, path))
    only = clean_subpath(only)
    destination = os.path.normpath(to or folder['path'])

    def rows() -> Iterator[Dict]:  # read again on each pass: a manifest can hold millions of entries
        return folders.entries(resources.db, folders.manifest_of(folder), under=only)

    if only and next(rows(), None) is None:
        raise ToolError(f'{only} is not in the archive of {folder["path"]}')
    what = f'{only} of {folder["path"]}' if only else folder['path']
    try:
        if not _refuse_overwrites(rows(), destination, force):
            # Folders still get their owner, mode and time (a run cut short before that step).
            with safefs.Tree(safefs.open_destination(destination, create=False)) as tree:
                _restore_directory_metadata(rows(), tree)
            entries = sum(1 for row in rows() if row['kind'] != DIR)
            return (
                f'{what}: nothing to restore, all {entries} files and links are already in {destination} exactly '
                f'as archived (0 written, 0 overwritten, {entries} skipped); the tape was not loaded'
            )
        bad: List[Tuple[str, str]] = []
        counts = Counts()
        read = []
        cut = _cut_files(resources.db, folder, only)
        with contextlib.ExitStack() as stack:
            assembly = _assembly(stack, destination, ctx.task.id) if cut else -1
            for tape, tape_path, part_rows, number in _readings(resources.db, folder, only, cut):
                read.append(tape)
                ctx.progress(step=f'loading {tape}')
                with resources.tape_mounted(tape, read_only=True):
                    source = os.path.join(resources.mountpoint, tape_path)
                    with safefs.Tree(safefs.open_destination(destination, create=True)) as tree:
                        prefix = f'.pytarchive-{ctx.task.id}-'
                        safefs.remove_private_folders(tree.root, prefix)  # left by a run of this task cut short
                        name, staging = safefs.private_folder(tree.root, prefix)
                        try:
                            restore_into = _restore_packed if folder['packed'] else _restore_files
                            part_bad, part_counts = restore_into(
                                ctx, folder, part_rows, source, tree, staging, only, force
                            )
                        finally:
                            safefs.remove_private_folder(tree.root, name, staging)
                            os.close(staging)
                        if cut:
                            _restore_pieces(cut, number, source, tree, assembly, force, part_counts, part_bad)
                bad += part_bad
                counts.merge(part_counts)
        ctx.progress(step='setting folder metadata')
        with safefs.Tree(safefs.open_destination(destination, create=True)) as tree:
            _restore_directory_metadata(rows(), tree)
    except safefs.InTheWay as exc:
        where = exc.path if exc.path.startswith('/') else f'{exc.path} in {destination}'
        raise ToolError(
            f'{where} is in the way ({exc.why}, not what the archive has there): restore stopped; '
            f'restore never writes through a link or replaces a folder'
        ) from None
    except OSError as exc:  # the destination full, read-only, a file where a folder should be...
        raise ToolError(f'restore stopped: {exc.filename or destination}: {exc.strerror}') from None
    files, _ = _count(rows())
    if bad:
        shown = '; '.join(f'{name}: {why}' for name, why in bad[:_SHOWN])
        raise ToolError(f'{len(bad)} of {files} files were not restored ({counts.text()}): {shown}')
    return f'{what} restored from {", ".join(read)} to {destination}: {counts.text()}, verified'


def _readings(db: Database, folder: Dict, only: str, cut: Dict[str, Dict]) -> List[Tuple[str, str, Rows, int]]:
    """(tape, path on it, its manifest rows, part number) to read in turn: the archive's one tape, or
    each part of a folder archived across tapes that holds something of `only` (the files cut across
    tapes are left to their pieces)."""
    held = parts.of(db, folder['id'])
    if not held:
        return [
            (
                folder['tape'],
                folder['tape_path'],
                lambda: folders.entries(db, folders.manifest_of(folder), under=only),
                0,
            )
        ]
    readings = []
    for part in held:

        def part_rows(part: Dict = part) -> Iterator[Dict]:
            rows = folders.entries(
                db, folders.manifest_of(folder), under=only, first=part['first_path'], last=part['last_path']
            )
            return (row for row in rows if row['path'] not in cut)

        has_pieces = any(piece['part'] == part['part'] for file in cut.values() for piece in file['pieces'])
        if has_pieces or next(part_rows(), None) is not None:
            readings.append((part['tape'], part['tape_path'], part_rows, part['part']))
    return readings


def _cut_files(db: Database, folder: Dict, only: str) -> Dict[str, Dict]:
    """The files of the restore cut across tapes: path -> {row, pieces, name in the assembly folder,
    settled (placed, skipped as already there, or not to be placed: a piece did not match)}."""
    found: Dict[str, Dict] = {}
    for piece in parts.pieces(db, folders.manifest_of(folder)):
        if only and piece['path'] != only and not piece['path'].startswith(only + '/'):
            continue
        if piece['path'] not in found:
            [row] = folders.entries(db, folders.manifest_of(folder), first=piece['path'], last=piece['path'])
            found[piece['path']] = {'row': row, 'pieces': [], 'settled': False, 'name': f'cut-{len(found)}'}
        found[piece['path']]['pieces'].append(piece)
    return found


def _assembly(stack: contextlib.ExitStack, destination: str, task_id: int) -> int:
    """A private folder at the top of the destination where the pieces of cut files are put back
    together across tapes, removed when the restore ends (and by its next run if it is cut short)."""
    tree = stack.enter_context(safefs.Tree(safefs.open_destination(destination, create=True)))
    prefix = f'.pytarchive-pieces-{task_id}-'
    safefs.remove_private_folders(tree.root, prefix)
    name, fd = safefs.private_folder(tree.root, prefix)
    stack.callback(os.close, fd)
    stack.callback(safefs.remove_private_folder, tree.root, name, fd)
    return fd


def _restore_pieces(
    cut: Dict[str, Dict],
    number: int,
    source: str,
    tree: safefs.Tree,
    assembly: int,
    force: bool,
    counts: Counts,
    bad: List[Tuple[str, str]],
) -> None:
    """Write the pieces this part's tape holds into their files in the assembly folder; a file whose
    last piece this is (and all of whose pieces matched) gets its metadata and is put in place."""
    for path, file in cut.items():
        row, mine = file['row'], [piece for piece in file['pieces'] if piece['part'] == number]
        if not mine:
            continue
        parent_path, name = _split(path)
        parent = tree.folder(parent_path, create=True)
        if already_restored(parent, name, row):
            counts.skipped += mine[0]['start'] == 0
            file['settled'] = True
            continue
        fd = os.open(file['name'], os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=assembly)
        try:
            for piece in mine:
                found = _write_at(fd, os.path.join(source, parts.piece_name(path, piece['start'])), piece['start'])
                if found != piece['checksum'] and not file['settled']:
                    file['settled'] = True
                    bad.append((path, f'its piece from byte {piece["start"]} is missing or differs on tape'))
            whole = mine[-1]['start'] + mine[-1]['size'] == row['size']
            if whole and not file['settled']:
                safefs.set_metadata(fd, row['uid'], row['gid'], row['mode'], row['mtime'])
        finally:
            os.close(fd)
        if whole and not file['settled']:
            existed = safefs.lstat(parent, name) is not None
            if _place(assembly, file['name'], parent, name, row, force, bad):
                counts.add(row, existed)


def _write_at(fd: int, path: str, start: int) -> Optional[str]:
    """Copy a piece from tape into fd at `start`; its BLAKE3 digest, None if it is not on the tape."""
    digest = blake3.blake3()
    try:
        for chunk in transfer.read_chunks(path):
            digest.update(chunk)
            transfer.write_all_at(fd, chunk, start)
            start += len(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def _count(rows: Iterable[Dict]) -> Tuple[int, int]:
    files = size = 0
    for row in rows:
        if row['kind'] == FILE:
            files, size = files + 1, size + row['size']
    return files, size


def _split(path: str) -> Tuple[str, str]:
    parent, _, name = path.rpartition('/')
    return parent, name


def _refuse_overwrites(rows: Iterable[Dict], destination: str, force: bool) -> bool:
    """Before the tape is loaded: what would be overwritten (refused without --force) and what is
    in the way whatever the flags (a link or file where a folder goes: writing through a link
    would put files elsewhere; a folder where a file goes: it is never deleted). Only a first
    answer: the restore itself checks again as it places each entry. -> whether anything is to be
    written (False: every entry is there exactly as archived, and the tape need not be loaded)."""
    root = safefs.open_destination(destination, create=False)
    if root is None:
        return True
    existing: List[str] = []
    missing = False
    in_the_way: Dict[str, None] = {}  # ordered, without repeats: a link's contents name it again
    with safefs.Tree(root) as tree:
        for row in rows:
            parent_path, name = _split(row['path'])
            try:
                parent = tree.folder(parent_path)
            except safefs.InTheWay as exc:
                in_the_way[exc.path] = None
                continue
            info = safefs.lstat(parent, name) if parent is not None else None
            if info is None:
                missing = True
                continue
            if (row['kind'] == DIR) != stat.S_ISDIR(info.st_mode):
                in_the_way[row['path']] = None
            elif row['kind'] != DIR and not already_restored(parent, name, row):
                existing.append(row['path'])
    if in_the_way:
        paths = list(in_the_way)
        raise ToolError(
            f'{_listed(paths)} in {destination} {"is" if len(paths) == 1 else "are"} in the way '
            f'(a link or file where the archive has a folder, or the other way round): nothing restored'
        )
    if existing and not force:
        raise ToolError(
            f'{len(existing)} files already exist in {destination} ({_listed(existing)}): nothing '
            f'restored; restore --to another folder, or add --force to overwrite them'
        )
    return missing or bool(existing)


def _listed(paths: List[str]) -> str:
    return ', '.join(paths[:_SHOWN]) + (f' and {len(paths) - _SHOWN} more' if len(paths) > _SHOWN else '')


def already_restored(dir_fd: int, name: str, row: Dict) -> bool:
    """The entry is there as the manifest describes it (a run cut short restored it already)."""
    info = safefs.lstat(dir_fd, name)
    if info is None:
        return False
    if row['kind'] == LINK:
        return stat.S_ISLNK(info.st_mode) and os.readlink(name, dir_fd=dir_fd) == row['target']
    return stat.S_ISREG(info.st_mode) and info.st_size == row['size'] and info.st_mtime == row['mtime']


def _restore_files(
    ctx: TaskContext, folder: Dict, rows: Rows, source: str, tree: safefs.Tree, staging: int, only: str, force: bool
) -> Tuple[List[Tuple[str, str]], Counts]:
    files, size = _count(rows())
    progress = Progress(ctx, 'restoring', bytes_total=size, files_total=files)
    bad: List[Tuple[str, str]] = []
    counts = Counts()
    for row in rows():
        if row['kind'] == DIR:
            _make_folder(tree, row)
            continue
        parent_path, name = _split(row['path'])
        parent = tree.folder(parent_path, create=True)
        if already_restored(parent, name, row):
            counts.skipped += 1  # identical already: never rewritten, --force or not
        else:
            existed = safefs.lstat(parent, name) is not None
            if row['kind'] == LINK:
                staged = safefs.create_link(staging, row['target'], 'link-')
                safefs.set_link_metadata(staging, staged, row['uid'], row['gid'], row['mtime'])
            else:
                staged, why = _staged_copy(staging, os.path.join(source, row['path']), row)
                if why:
                    bad.append((row['path'], why))
            if staged and _place(staging, staged, parent, name, row, force, bad):
                counts.add(row, existed)
        if row['kind'] == FILE:
            progress.add(row['size'], files=1)
        ctx.checkpoint()
    progress.flush()
    return bad, counts


def _staged_copy(staging: int, source: str, row: Dict) -> Tuple[Optional[str], Optional[str]]:
    """Copy a file from tape into the staging folder: (its name there, None) once its checksum
    matches and its metadata is set; (None, why not) otherwise."""
    staged, fd = safefs.create_file(staging, 'file-')
    try:
        # By name through /proc: the staging folder is this process's alone (0700), held open.
        checksum = transfer.copy_file(source, f'/proc/self/fd/{staging}/{staged}')
        if checksum == row['checksum']:
            safefs.set_metadata(fd, row['uid'], row['gid'], row['mode'], row['mtime'])
            return staged, None
        why = 'checksum on tape differs from the manifest'
    except FileNotFoundError as missing:
        if missing.filename != source:
            raise
        why = 'missing on tape'
    finally:
        os.close(fd)
    os.unlink(staged, dir_fd=staging)
    return None, why


def _make_folder(tree: safefs.Tree, row: Dict) -> None:
    """The folder made (or found) and given its owner and mode at once, so that a restore stopped
    half-way leaves nothing only root may enter; its time is set last."""
    safefs.set_metadata(tree.folder(row['path'], create=True), row['uid'], row['gid'], row['mode'])


def _place(
    staged_in: int, staged: str, parent: int, name: str, row: Dict, force: bool, bad: List[Tuple[str, str]]
) -> bool:
    """Link the staged entry into place; False (and a line in `bad`) when it was not."""
    try:
        safefs.place(staged_in, staged, parent, name, replace=force)
    except safefs.InTheWay as exc:
        raise safefs.InTheWay(row['path'], exc.why) from None
    except FileExistsError:
        bad.append((row['path'], 'appeared in the destination during the restore; not overwritten (see --force)'))
        return False
    return True


def _restore_packed(
    ctx: TaskContext, folder: Dict, rows: Rows, source: str, tree: safefs.Tree, staging: int, only: str, force: bool
) -> Tuple[List[Tuple[str, str]], Counts]:
    archive_size = os.path.getsize(source)
    progress = Progress(ctx, 'unpacking', bytes_total=archive_size, files_total=1)
    checksum = packing.unpack(source, staging, [only] if only else None)
    if checksum != folder['packed_checksum']:
        raise ToolError(f'{source} on {folder["tape"]} differs from the archive written (checksum): nothing restored')
    progress.add(archive_size, files=1)
    files, size = _count(rows())
    progress = Progress(ctx, 'moving into place', bytes_total=size, files_total=files)
    bad: List[Tuple[str, str]] = []
    counts = Counts()
    with safefs.Tree(os.dup(staging)) as unpacked:
        for row in rows():
            if row['kind'] == DIR:
                _make_folder(tree, row)
                continue
            parent_path, name = _split(row['path'])
            staged_in = unpacked.folder(parent_path)
            if staged_in is None or safefs.lstat(staged_in, name) is None:
                bad.append((row['path'], 'missing from the packed archive'))
                continue
            parent = tree.folder(parent_path, create=True)
            if already_restored(parent, name, row):
                counts.skipped += 1
            else:
                existed = safefs.lstat(parent, name) is not None
                # The archive's checksum matched: what was staged is what was archived, even for a file
                # that changed while prepare packed it (its manifest size may differ; its bytes are these).
                if row['kind'] == FILE:  # the packed copy keeps whole seconds; the manifest has the rest
                    os.utime(name, (row['mtime'], row['mtime']), dir_fd=staged_in, follow_symlinks=False)
                if _place(staged_in, name, parent, name, row, force, bad):
                    counts.add(row, existed)
            if row['kind'] == FILE:
                progress.add(row['size'], files=1)
            ctx.checkpoint()
    progress.flush()
    return bad, counts


def _restore_directory_metadata(rows: Iterable[Dict], tree: safefs.Tree) -> None:
    """Last, deepest first: restoring a directory's contents changes its modification time."""
    wanted = [(row['path'], row['uid'], row['gid'], row['mode'], row['mtime']) for row in rows if row['kind'] == DIR]
    for path, uid, gid, mode, mtime in reversed(wanted):
        fd = tree.folder(path)
        if fd is not None:  # removed by someone since: nothing to set
            safefs.set_metadata(fd, uid, gid, mode, mtime)
