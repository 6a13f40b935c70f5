"""`pytarchive archive PATH TAPE1,TAPE2,...`: a folder larger than a tape, archived in parts.

The manifest is written in path order onto the first tape until the next file would not fit (the
estimate archive's space check makes: each file's data as whole records, every entry's index
record twice, the reserve); that part is closed, the volume unmounted (LTFS writes its index),
mounted read-only and the part read back and matched on its own tape; then the next tape takes the
rest, and so on. Parts break at file boundaries: a file is never cut. The folder is archived, and
deleteable, once its last part is.

A run cut short, or a part whose copy failed, resumes: parts already archived are kept, an
unfinished part carries on on its tape. Tapes running out leave the folder 'archiving' with its
archived parts: archive it again naming more tapes. A single file larger than what a whole tape
offers is refused in one line naming it (it would have to be cut).
"""

import os
from typing import Dict, List, Optional, Tuple

from common.errors import ToolError
from pytarchive.progress import Progress
from pytarchive.state import folders, parts, tapes
from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskContext
from pytarchive.tasks import archive
from pytarchive.units import human_bytes
from pytarchive.walk import FILE


class Room:
    """What one tape still takes, by archive's estimate; called for each row before it is copied."""

    def __init__(self, budget: int, block: int):
        self.budget = budget
        self.block = block
        self.data = self.entries = self.files = self.size = 0

    def __call__(self, row: Dict, on_tape: bool) -> bool:
        data = 0 if row['kind'] != FILE or on_tape else archive.blocks(row['size'], self.block)
        needed = (
            self.data
            + data
            + 2 * archive.blocks((self.entries + 1) * archive.INDEX_BYTES_PER_ENTRY, self.block)
            + archive.RESERVE_BYTES
        )
        if row['kind'] == FILE and needed > self.budget:
            return False
        self.data += data
        self.entries += 1
        if row['kind'] == FILE:
            self.files += 1
            self.size += row['size']
        return True


def run(ctx: TaskContext, folder: Dict, barcodes: List[str]) -> str:
    db = ctx.resources.db
    known = parts.of(db, folder['id'])
    done = [part for part in known if part['state'] == parts.ARCHIVED]
    open_part = next((part for part in known if part['state'] == parts.ARCHIVING), None)
    order = [barcode for barcode in barcodes if barcode not in {part['tape'] for part in done}]
    if open_part is not None:
        if open_part['tape'] not in order:
            raise ToolError(
                f'part {open_part["part"]} of {folder["path"]} was being written to {open_part["tape"]} when its run '
                f'ended: name {open_part["tape"]} among the tapes to carry on with it'
            )
        order.remove(open_part['tape'])
        order.insert(0, open_part['tape'])
    start = _next_path(db, folder, done)
    archived_bytes = sum(part['archived_bytes'] or 0 for part in done)
    number = len(done) + 1
    for barcode in order:
        if start is None:
            break
        if tapes.is_full(db, barcode):
            raise ToolError(f'{barcode} is full (LTFS never gives space back): name another tape')
        with ctx.resources.tape_mounted(barcode) as slot:
            tapes.record_formatted(db, barcode, slot)
            try:
                resumed = open_part if open_part is not None and open_part['tape'] == barcode else None
                start, written = _write_part(ctx, folder, barcode, number, start, resumed)
            finally:
                archive.record_space(ctx.resources, barcode, slot)
        archived_bytes += written
        number += 1
        open_part = None
    if start is not None:
        raise ToolError(
            f'{folder["path"]} does not fit on {", ".join(barcodes)}: {number - 1} parts are archived; the rest, '
            f'from {start}, needs more tapes: `pytarchive archive {folder["path"]} {",".join(barcodes)},TAPE` '
            f'carries on (nothing is copied twice)'
        )
    folders.mark_archived(db, folder['id'], archived_bytes)
    shown = '; '.join(
        f'part {part["part"]} on {part["tape"]} as {part["tape_path"]}' for part in parts.of(db, folder['id'])
    )
    return (
        f'{folder["path"]} archived across {number - 1} tapes, each part verified on its own tape: '
        f'{folder["file_count"]} files, {human_bytes(archived_bytes)} ({shown})'
    )


def _next_path(db: Database, folder: Dict, done: List[Dict]) -> Optional[str]:
    """The first manifest path no archived part holds; None when they hold them all."""
    after = done[-1]['last_path'] if done else None
    rows = db.query(
        'SELECT MIN(path) FROM manifest WHERE folder = ?' + (' AND path > ?' if after is not None else ''),
        (folders.manifest_of(folder), *([after] if after is not None else [])),
    )
    return rows[0][0]


def _write_part(
    ctx: TaskContext, folder: Dict, barcode: str, number: int, first: str, part: Optional[Dict]
) -> Tuple[Optional[str], int]:
    """Copy what fits from `first` on, read it back; -> (where the next part starts, bytes written)."""
    resources = ctx.resources
    db, mountpoint = resources.db, resources.mountpoint
    resuming = part is not None
    if part is None:
        tape_path = archive.free_tape_path(mountpoint, folder)
        if number == 1:
            folders.start_archive(db, folder['id'], barcode, tape_path, resuming=False)
        part = parts.start(db, folder['id'], number, barcode, tape_path, first)
    destination = os.path.join(mountpoint, part['tape_path'])
    total, free = resources.drive.space()
    limit = resources.config.general.tape_max_size
    room = Room(min(free, limit - (total - free)) if limit else free, os.statvfs(mountpoint).f_frsize)
    progress = Progress(ctx, f'copying part {number} to {barcode}')
    rows = folders.entries(db, folders.manifest_of(folder), first=first)
    ctx.checkpoint()
    try:
        stopped = archive.copy_rows(ctx, folder, rows, destination, resuming, folder['path'], progress, room)
        if stopped is not None and not room.files:
            raise ToolError(
                f'{stopped["path"]} in {folder["path"]} alone ({human_bytes(stopped["size"])}) is larger than what '
                f'{barcode} takes ({human_bytes(room.budget)}): pytarchive does not cut a file across tapes; '
                f'nothing of it was written'
            )
    except (ToolError, OSError) as exc:
        parts.drop(db, folder['id'], number)
        raise archive.failed(db, folder, archive.copy_failure(exc, folder, barcode, destination)) from None
    progress.flush()
    last = _last_before(db, folder, first, stopped['path'] if stopped else None)
    parts.close(db, folder['id'], number, last)
    ctx.checkpoint()
    resources.remount_read_only()
    bad = archive.verify_tree(ctx, folder, destination, {'first_path': first, 'last_path': last})
    if bad:
        parts.drop(db, folder['id'], number)
        shown = '; '.join(f'{name}: {why}' for name, why in bad[:5])
        raise archive.failed(
            db,
            folder,
            f'verification of part {number} failed on {barcode} for {len(bad)} entries: {shown}; '
            f'{folder["path"]} is NOT archived: archive it again (its archived parts are kept)',
        )
    parts.mark_archived(db, folder['id'], number, room.size)
    return (stopped['path'] if stopped else None), room.size


def _last_before(db: Database, folder: Dict, first: str, stop: Optional[str]) -> str:
    """The last manifest path of a part that starts at `first` and ends before `stop` (or the end)."""
    where, args = 'folder = ? AND path >= ?', [folders.manifest_of(folder), first]
    if stop is not None:
        where += ' AND path < ?'
        args.append(stop)
    return db.query(f'SELECT MAX(path) FROM manifest WHERE {where}', args)[0][0]
