"""`pytarchive copy PATH BARCODE`: a further copy of an archived folder on another tape (the one
kept off-site), written, read back and matched like the first, and recorded as a copy of it.

The copy must hold the bytes that were archived, so every file read for it is checked against the
checksum its first archive recorded. Where the bytes come from:
  - the folder itself, when it is still there and not packed (the cheapest read: no tape to load);
    a file changed since it was archived fails the copy, and `--from-tape` makes it from tape;
  - otherwise (a packed folder, whose scratch tar.zst went once it was on tape; a folder deleted
    since; or --from-tape) from the lowest-numbered sound copy on a tape the library holds:
    tape to tape when another drive is idle (the service lends it to the task: the source tape is
    read there as the copy is written, each file checked as it goes by); else, with one drive or
    all others busy, it is first read into scratch_path, every file checked, and the copy written
    from there (scratch_path then needs room for the folder).
Once written, the copy is unmounted, mounted read-only and read back whole, as an archive is. A
run cut short resumes on the same tape, as archive does.
"""

import contextlib
import os
import shutil
from typing import Dict, List

from common.errors import ToolError
from pytarchive import transfer
from pytarchive.checks import copyable_folder
from pytarchive.progress import Progress
from pytarchive.state import folders, tapes
from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskContext
from pytarchive.tasks import archive
from pytarchive.units import human_bytes
from pytarchive.walk import DIR, FILE, LINK

# Room kept free in scratch_path beyond the staged folder itself.
SCRATCH_RESERVE = 64 * 1024 * 1024


def run(ctx: TaskContext, path: str, barcode: str, from_tape: bool = False) -> str:
    resources = ctx.resources
    db = resources.db
    first = copyable_folder(db, path)
    for held in folders.family(db, first['id']):
        if held['tape'] == barcode:
            if held['copy_of'] and held['archived'] >= ctx.task.created:  # this task, cut short after the mark
                return archive.archived_text(held, barcode, held['tape_path'], held['archived_bytes'])
            raise ToolError(f'{barcode} already holds copy {held["copy_number"]} of {path}: use another tape')
    if tapes.is_full(db, barcode):
        raise ToolError(f'{barcode} is full (LTFS never gives space back): use another tape')
    record = folders.start_copy(db, first, barcode, first['packed'])
    if not _reads_tape(first, from_tape):
        return _write(ctx, record, barcode, '', '')
    source = _source_copy(db, first)
    with ctx.other_drive() as reader:
        if reader is not None:  # tape to tape: the copy read on another drive as it is written
            ctx.progress(step=f'loading {source["tape"]} into drive {reader.index}')
            with reader.tape_mounted(source['tape'], read_only=True):
                root = os.path.join(reader.mountpoint, source['tape_path'])
                return _write(ctx, record, barcode, root, f' (read from {source["tape"]} in drive {reader.index})')
    staging = _staging(resources.config.general.scratch_path, ctx.task.id)
    try:
        root = _stage(ctx, first, source, staging)
        return _write(ctx, record, barcode, root, f' (read from {source["tape"]} through {staging})')
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)


def _write(ctx: TaskContext, record: Dict, barcode: str, root: str, how: str) -> str:
    """Write the copy on its tape from root ('': the folder itself) and read it back."""
    resources = ctx.resources
    with resources.tape_mounted(barcode) as slot:
        tapes.record_formatted(resources.db, barcode, slot)
        try:
            text = archive.archive_mounted(ctx, record, barcode, slot, root)
        except BaseException:
            archive.record_space(resources, barcode, slot)
            raise
    return f'copy {record["copy_number"]} of {text}{how}'


def _source_copy(db: Database, first: Dict) -> Dict:
    """The copy read when the folder is not read from disk: the lowest-numbered sound one in the library."""
    readable = [held for held in folders.sound_copies(db, first['id']) if held['slot'] is not None]
    if not readable:
        raise ToolError(
            f'{first["path"]} is not on disk as archived and no sound copy of it is in the library '
            f'(copies on {", ".join(h["tape"] for h in folders.family(db, first["id"]))}): load one and requeue'
        )
    return readable[0]


def tapes_needed(db: Database, path: str, barcode: str, from_tape: bool = False) -> List[str]:
    """The tape a copy reads besides BARCODE when not reading the folder on disk: the sound copy
    the library holds."""
    first = folders.latest(db, path, (folders.ARCHIVED,))
    return [_source_copy(db, first)['tape']] if first and _reads_tape(first, from_tape) else []


def _reads_tape(first: Dict, from_tape: bool) -> bool:
    """Whether the copy is read from a copy on tape: asked to, or the folder is packed (its tar.zst
    left scratch once archived) or no longer on disk."""
    return bool(from_tape or first['packed'] or not os.path.isdir(first['path']))


def _staging(scratch: str, task_id: int) -> str:
    return os.path.join(scratch, f'pytarchive-copy-{task_id}')


def _stage(ctx: TaskContext, first: Dict, source: Dict, staging: str) -> str:
    """Read the source copy into `staging`, every file checked against its checksum; -> where the
    copy is then read from (the staged folder, or the staged tar.zst of a packed one)."""
    resources = ctx.resources
    needed = (first['archived_bytes'] if first['packed'] else first['source_bytes']) or 0
    shutil.rmtree(staging, ignore_errors=True)  # what a run cut short staged is read again
    os.makedirs(staging, mode=0o700)
    free = shutil.disk_usage(staging).free
    if free < needed + SCRATCH_RESERVE:
        raise ToolError(
            f'copying {first["path"]} from {source["tape"]} stages it in {os.path.dirname(staging)} first: '
            f'{human_bytes(needed)} needed, {human_bytes(free)} free; free room there or set [General] scratch_path'
        )
    ctx.progress(step=f'loading {source["tape"]}')
    with resources.tape_mounted(source['tape'], read_only=True):
        on_tape = os.path.join(resources.mountpoint, source['tape_path'])
        if first['packed']:
            staged = os.path.join(staging, os.path.basename(source['tape_path']))
            _stage_packed(ctx, source, on_tape, staged)
            return staged
        _stage_tree(ctx, first, source, on_tape, staging)
        return staging


def _stage_packed(ctx: TaskContext, source: Dict, on_tape: str, staged: str) -> None:
    size = os.path.getsize(on_tape)
    progress = Progress(ctx, f'reading {source["tape"]}', bytes_total=size, files_total=1)
    found = transfer.copy_file(on_tape, staged, on_chunk=progress.following(ctx))
    if found != source['packed_checksum']:
        raise ToolError(_differs(source, os.path.basename(on_tape)))
    progress.file_done(size, 0)
    progress.flush()


def _stage_tree(ctx: TaskContext, first: Dict, source: Dict, on_tape: str, staging: str) -> None:
    db = ctx.resources.db
    progress = Progress(
        ctx, f'reading {source["tape"]}', bytes_total=first['source_bytes'], files_total=first['file_count']
    )
    bad: List[str] = []
    for row in folders.entries(db, first['id']):
        target = os.path.join(staging, row['path'])
        if row['kind'] == DIR:
            os.makedirs(target, exist_ok=True)
        elif row['kind'] == LINK:
            transfer.make_link(row['target'], target)
        elif row['kind'] == FILE:
            started_at = progress.bytes_done
            try:
                found = transfer.copy_file(os.path.join(on_tape, row['path']), target, progress.following(ctx))
            except FileNotFoundError:
                found = None
            if found != row['checksum']:
                bad.append(row['path'])
            progress.file_done(row['size'], started_at)
            ctx.checkpoint()
    progress.flush()
    if bad:
        raise ToolError(_differs(source, ', '.join(bad[:5]) + (f' and {len(bad) - 5} more' if len(bad) > 5 else '')))


def _differs(source: Dict, what: str) -> str:
    return (
        f'copy {source["copy_number"]} of {source["path"]} on {source["tape"]} no longer matches its checksums '
        f'({what}): nothing copied; run `pytarchive verify {source["tape"]}` and copy from a sound copy'
    )
