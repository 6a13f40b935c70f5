"""`pytarchive restore PATH [--to DIR] [--only SUBPATH] [--force]`: bring an archived folder back.

Nothing is written under its final name before its checksum matched the manifest: a file goes to
a hidden temporary name next to its destination and is renamed when it verifies; a packed folder is
unpacked into a hidden staging folder, its archive's checksum compared, and only then moved into
place. Existing files are never overwritten without --force, checked before the tape is loaded.
Owners, modes and modification times come back from the manifest.
"""

import os
import shutil
import stat
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from common.errors import ToolError
from pytarchive import folders, packing, transfer
from pytarchive.progress import Progress
from pytarchive.queue import TaskContext, task
from pytarchive.units import human_bytes
from pytarchive.walk import DIR, FILE, LINK

_SHOWN = 5


def archived_folder(db, path: str) -> Dict:
    folder = folders.latest(db, path, (folders.ARCHIVED,))
    if folder is None:
        raise ToolError(f'{path} has no verified archive (see `pytarchive deleteable` for what is archived)')
    return folder


def clean_subpath(only: str) -> str:
    """SUBPATH relative to the folder, without '.', '..' or a leading '/'."""
    parts = [part for part in only.strip('/').split('/') if part not in ('', '.')]
    if '..' in parts:
        raise ToolError(f'--only {only!r}: must stay inside the folder (no "..")')
    return '/'.join(parts)


@task('restore')
def restore(ctx: TaskContext, path: str, to: Optional[str] = None, only: str = '', force: bool = False) -> str:
    resources = ctx.resources
    folder = archived_folder(resources.db, path)
    only = clean_subpath(only)
    destination = os.path.normpath(to or folder['path'])

    def rows() -> Iterator[Dict]:  # read again on each pass: a manifest can hold millions of entries
        return folders.entries(resources.db, folder['id'], under=only)

    if only and next(rows(), None) is None:
        raise ToolError(f'{only} is not in the archive of {folder["path"]}')
    _refuse_overwrites(rows(), destination, force)
    try:
        with resources.tape_mounted(folder['tape'], read_only=True):
            source = os.path.join(resources.config.device.mountpoint, folder['tape_path'])
            if folder['packed']:
                bad = _restore_packed(ctx, folder, rows, source, destination, only, force)
            else:
                bad = _restore_files(ctx, folder, rows, source, destination, force)
        _restore_directory_metadata(rows(), destination)
    except OSError as exc:  # the destination full, read-only, a file where a folder should be...
        raise ToolError(f'restore stopped: {exc.filename or destination}: {exc.strerror}') from None
    files, size = _count(rows())
    if bad:
        shown = '; '.join(f'{name}: {why}' for name, why in bad[:_SHOWN])
        raise ToolError(f'{len(bad)} of {files} files were not restored: {shown}')
    what = f'{only} of {folder["path"]}' if only else folder['path']
    return f'{what} restored from {folder["tape"]} to {destination}: {files} files, {human_bytes(size)}, verified'


def _count(rows: Iterable[Dict]) -> Tuple[int, int]:
    files = size = 0
    for row in rows:
        if row['kind'] == FILE:
            files, size = files + 1, size + row['size']
    return files, size


def _refuse_overwrites(rows: Iterable[Dict], destination: str, force: bool) -> None:
    """Before the tape is loaded: what would be overwritten (refused without --force) and what is
    in the way whatever the flags (a link or file where a folder goes: writing through a link
    would put files elsewhere; a folder where a file goes: it is never deleted)."""
    existing, in_the_way = [], []
    for row in rows:
        target = os.path.join(destination, row['path'])
        if not os.path.lexists(target):
            continue
        is_folder = os.path.isdir(target) and not os.path.islink(target)
        if (row['kind'] == DIR) != is_folder:
            in_the_way.append(row['path'])
        elif row['kind'] != DIR and not already_restored(target, row):
            existing.append(row['path'])
    if in_the_way:
        raise ToolError(f'{_listed(in_the_way)} in {destination} {"is" if len(in_the_way) == 1 else "are"} in the way '
                        f'(a link or file where the archive has a folder, or the other way round): nothing restored')
    if existing and not force:
        raise ToolError(f'{len(existing)} files already exist in {destination} ({_listed(existing)}): nothing '
                        f'restored; restore --to another folder, or add --force to overwrite them')


def _listed(paths: List[str]) -> str:
    return ', '.join(paths[:_SHOWN]) + (f' and {len(paths) - _SHOWN} more' if len(paths) > _SHOWN else '')


def already_restored(target: str, row: Dict) -> bool:
    """The entry is there as the manifest describes it (a run cut short restored it already)."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return False
    if row['kind'] == LINK:
        return os.path.islink(target) and os.readlink(target) == row['target']
    return stat.S_ISREG(info.st_mode) and info.st_size == row['size'] and info.st_mtime == row['mtime']


def _restore_files(ctx: TaskContext, folder: Dict, rows: Callable[[], Iterator[Dict]], source: str,
                   destination: str, force: bool) -> List[Tuple[str, str]]:
    files, size = _count(rows())
    progress = Progress(ctx, 'restoring', bytes_total=size, files_total=files)
    bad = []
    for row in rows():
        target = os.path.join(destination, row['path'])
        if row['kind'] == DIR:
            os.makedirs(target, exist_ok=True)
        elif row['kind'] == LINK:
            _replace_with_link(row, target)
        elif not force and already_restored(target, row):
            progress.add(row['size'], files=1)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            # Short, so that any file name (up to 255 bytes) still has a temporary one.
            temporary = os.path.join(os.path.dirname(target), f'.pytarchive-{ctx.task.id}-{progress.files_done}')
            try:
                checksum = transfer.copy_file(os.path.join(source, row['path']), temporary)
                if checksum != row['checksum']:
                    bad.append((row['path'], 'checksum on tape differs from the manifest'))
                    continue
                _apply_metadata(temporary, row)
                os.replace(temporary, target)
            except FileNotFoundError as missing:
                if missing.filename != os.path.join(source, row['path']):
                    raise
                bad.append((row['path'], 'missing on tape'))
            finally:
                if os.path.lexists(temporary):
                    os.unlink(temporary)
            progress.add(row['size'], files=1)
            ctx.checkpoint()
    progress.flush()
    return bad


def _restore_packed(ctx: TaskContext, folder: Dict, rows: Callable[[], Iterator[Dict]], source: str, destination: str,
                    only: str, force: bool) -> List[Tuple[str, str]]:
    progress = Progress(ctx, 'unpacking', bytes_total=os.path.getsize(source), files_total=1)
    os.makedirs(destination, exist_ok=True)
    staging = os.path.join(destination, f'.pytarchive-restore-{ctx.task.id}')
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        checksum = packing.unpack(source, staging, [only] if only else None)
        if checksum != folder['packed_checksum']:
            raise ToolError(f'{source} on {folder["tape"]} differs from the archive written (checksum): '
                            f'nothing restored')
        progress.add(os.path.getsize(source), files=1)
        bad = []
        for row in rows():
            staged, target = os.path.join(staging, row['path']), os.path.join(destination, row['path'])
            if row['kind'] == DIR:
                os.makedirs(target, exist_ok=True)
                continue
            if not os.path.lexists(staged):
                bad.append((row['path'], 'missing from the packed archive'))
                continue
            if not force and already_restored(target, row):
                continue
            # The archive's checksum matched: what was staged is what was archived, even for a file
            # that changed while prepare packed it (its manifest size may differ; its bytes are these).
            os.replace(staged, target)
            if row['kind'] == FILE:  # the packed copy keeps whole seconds; the manifest has the rest
                os.utime(target, (row['mtime'], row['mtime']))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress.flush()
    return bad


def _replace_with_link(row: Dict, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    transfer.make_link(row['target'], target)
    os.lchown(target, row['uid'], row['gid'])


def _apply_metadata(path: str, row: Dict) -> None:
    os.chown(path, row['uid'], row['gid'])
    os.chmod(path, row['mode'])
    os.utime(path, (row['mtime'], row['mtime']))


def _restore_directory_metadata(rows: Iterable[Dict], destination: str) -> None:
    """Last, deepest first: restoring a directory's contents changes its modification time."""
    for row in reversed([row for row in rows if row['kind'] == DIR]):
        target = os.path.join(destination, row['path'])
        if row['kind'] == DIR and os.path.isdir(target):
            _apply_metadata(target, row)
