"""`pytarchive restore PATH [--to DIR] [--only SUBPATH] [--force]`: bring an archived folder back.

Nothing is written under its final name before its checksum matched the manifest: a file goes to
a hidden temporary name next to its destination and is renamed when it verifies; a packed folder is
unpacked into a hidden staging folder, its archive's checksum compared, and only then moved into
place. Existing files are never overwritten without --force, checked before the tape is loaded.
Owners, modes and modification times come back from the manifest.
"""

import os
import shutil
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
                bad = _restore_files(ctx, folder, rows, source, destination)
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
    existing = [row['path'] for row in rows
                if row['kind'] != DIR and os.path.lexists(os.path.join(destination, row['path']))]
    if existing and not force:
        shown = ', '.join(existing[:_SHOWN]) + (f' and {len(existing) - _SHOWN} more' if len(existing) > _SHOWN else '')
        raise ToolError(f'{len(existing)} files already exist in {destination} ({shown}): nothing restored; '
                        f'restore --to another folder, or add --force to overwrite them')


def _restore_files(ctx: TaskContext, folder: Dict, rows: Callable[[], Iterator[Dict]], source: str,
                   destination: str) -> List[Tuple[str, str]]:
    files, size = _count(rows())
    progress = Progress(ctx, 'restoring', bytes_total=size, files_total=files)
    bad = []
    for row in rows():
        target = os.path.join(destination, row['path'])
        if row['kind'] == DIR:
            os.makedirs(target, exist_ok=True)
        elif row['kind'] == LINK:
            _replace_with_link(row, target)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            temporary = os.path.join(os.path.dirname(target), f'.{os.path.basename(target)}.pytarchive-{ctx.task.id}')
            try:
                checksum = transfer.copy_file(os.path.join(source, row['path']), temporary)
            except FileNotFoundError:
                bad.append((row['path'], 'missing on tape'))
                continue
            if checksum != row['checksum']:
                os.unlink(temporary)
                bad.append((row['path'], 'checksum on tape differs from the manifest'))
                continue
            _apply_metadata(temporary, row)
            os.replace(temporary, target)
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
            if row['kind'] == FILE and os.lstat(staged).st_size != row['size']:
                bad.append((row['path'], 'size in the packed archive differs from the manifest'))
                continue
            if force and os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            os.replace(staged, target)
            if row['kind'] == FILE:  # the packed copy keeps whole seconds; the manifest has the rest
                os.utime(target, (row['mtime'], row['mtime']))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress.flush()
    return bad


def _replace_with_link(row: Dict, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.lexists(target):
        os.unlink(target)
    os.symlink(row['target'], target)
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
