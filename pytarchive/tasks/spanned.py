"""`pytarchive archive PATH TAPE1,TAPE2,...`: a folder larger than a tape, archived in parts.

The manifest is written in path order onto the first tape until the next file would not fit (the
estimate archive's space check makes: each file's data as whole records, every entry's index
record twice, the reserve); that part is closed, the volume unmounted (LTFS writes its index),
mounted read-only and the part read back and matched on its own tape; then the next tape takes the
rest, and so on. Parts break at file boundaries, so each tape reads on its own: a file that does
not fit in what is left of a tape starts the next one. Only a file larger than what a whole tape
takes (as large as this one, empty) is cut, where it comes: as much of it as the tape still takes
goes there as a piece, a file of its own named state.parts.piece_name with its own checksum, and
the next part carries on with the rest. The folder is archived, and deleteable, once its last part is.

A run cut short, or a part whose copy failed, resumes: parts already archived are kept, an
unfinished part carries on on its tape (a piece in it is written again). Tapes running out leave
the folder 'archiving' with its archived parts: archive it again naming more tapes.
"""

import os
from typing import Dict, List, Optional, Set, Tuple

import blake3

from common.errors import ToolError
from pytarchive import tapedesc, transfer
from pytarchive.progress import Progress
from pytarchive.state import folders, parts, tapes
from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskContext
from pytarchive.tasks import archive
from pytarchive.units import human_bytes
from pytarchive.walk import FILE


# The least a tape already holding files must still take to start a piece of a file cut across tapes.
MIN_PIECE = 64 * 1024 * 1024


class Room:
    """What one tape still takes, by archive's estimate; called for each row before it is copied.
    A file already cut across tapes never fits whole: the rest of it goes piece by piece."""

    def __init__(self, budget: int, whole_tape: int, block: int, cut: Set[str]):
        """budget: what the tape takes now; whole_tape: what it took empty."""
        self.budget = budget
        self.whole_tape = whole_tape
        self.block = block
        self.cut = cut
        self.data = self.entries = self.files = self.size = 0

    def _needed(self, data: int) -> int:
        index = 2 * archive.blocks((self.entries + 1) * archive.INDEX_BYTES_PER_ENTRY, self.block)
        return self.data + data + index + archive.RESERVE_BYTES

    def __call__(self, row: Dict, on_tape: bool) -> bool:
        data = 0 if row['kind'] != FILE or on_tape else archive.blocks(row['size'], self.block)
        if row['kind'] == FILE and (row['path'] in self.cut or self._needed(data) > self.budget):
            return False
        self._took(data, row['size'] if row['kind'] == FILE else None)
        return True

    def too_big(self, row: Dict) -> bool:
        """Larger than what a whole tape takes: it is cut wherever it comes, no tape would take it."""
        alone = archive.blocks(row['size'], self.block) + 2 * archive.blocks(archive.INDEX_BYTES_PER_ENTRY, self.block)
        return alone + archive.RESERVE_BYTES > self.whole_tape

    def piece(self) -> int:
        """How many bytes of a file cut across tapes this tape takes now: whole records."""
        return max((self.budget - self._needed(0)) // self.block * self.block, 0)

    def took_piece(self, size: int) -> None:
        self._took(archive.blocks(size, self.block), size)

    def _took(self, data: int, file_size: Optional[int]) -> None:
        self.data += data
        self.entries += 1
        if file_size is not None:
            self.files += 1
            self.size += file_size


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
    """The first manifest path no archived part holds whole; None when they hold them all."""
    after = done[-1]['last_path'] if done else None
    if after is not None:
        cut = parts.pieces(db, folder['id'], after)
        if cut and sum(piece['size'] for piece in cut) < _size(db, folder, after):
            return after  # the last part ended with a piece of this file: the next carries on with it
    rows = db.query(
        'SELECT MIN(path) FROM manifest WHERE folder = ?' + (' AND path > ?' if after is not None else ''),
        (folders.manifest_of(folder), *([after] if after is not None else [])),
    )
    return rows[0][0]


def _size(db: Database, folder: Dict, path: str) -> int:
    return db.query('SELECT size FROM manifest WHERE folder = ? AND path = ?', (folders.manifest_of(folder), path))[0][
        0
    ]


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
    progress = Progress(ctx, f'copying part {number} to {barcode}')
    mine = folders.manifest_of(folder)
    cut = {piece['path'] for piece in parts.pieces(db, mine)}
    block = os.statvfs(mountpoint).f_frsize
    described = tapedesc.reserve(db, mine, block)  # the part's description and the catalog's copy
    budget = (min(free, limit - (total - free)) if limit else free) - described
    room = Room(budget, min(total, limit or total) - described, block, cut)
    ctx.checkpoint()
    start, done, unfinished = first, None, None  # done: a cut file whose last piece this part holds
    try:
        while True:
            rows = (row for row in folders.entries(db, mine, first=start) if row['path'] != done)
            stopped = archive.copy_rows(ctx, folder, rows, destination, resuming, folder['path'], progress, room)
            if stopped is None or (room.files and stopped['path'] not in cut and not room.too_big(stopped)):
                break  # all copied, or the tape is full before this file: it starts the next part
            if room.files and room.piece() < MIN_PIECE:
                break  # too little left on this tape to be worth a piece: the next part starts the file
            # A file no tape takes whole, or one the part starts with that does not fit: a piece of it.
            end = _write_piece(ctx, folder, number, barcode, stopped, destination, room, progress)
            cut.add(stopped['path'])
            if end < stopped['size']:
                unfinished = stopped  # the tape is full: the next part carries on with this file
                break
            start = done = stopped['path']
    except (ToolError, OSError) as exc:
        parts.drop(db, folder['id'], number)
        raise archive.failed(db, folder, archive.copy_failure(exc, folder, barcode, destination)) from None
    progress.flush()
    if unfinished is not None:
        last, following = unfinished['path'], unfinished['path']
    else:
        following = stopped['path'] if stopped else None
        last = _last_before(db, folder, first, following)
    parts.close(db, folder['id'], number, last, following is None)
    written = _describe(ctx, folder, barcode, part, following is None, first, last)
    ctx.checkpoint()
    try:
        resources.remount_read_only()
        bad = archive.verify_tree(ctx, folder, destination, {'part': number, 'first_path': first, 'last_path': last})
    except (ToolError, OSError) as exc:
        bad = [(destination, exc.message if isinstance(exc, ToolError) else exc.strerror or str(exc))]
    bad += tapedesc.check(mountpoint, written)
    if bad:
        archive.withdraw_description(resources, written)
        parts.drop(db, folder['id'], number)
        shown = '; '.join(f'{name}: {why}' for name, why in bad[:5])
        raise archive.failed(
            db,
            folder,
            f'verification of part {number} failed on {barcode} for {len(bad)} entries: {shown}; '
            f'{folder["path"]} is NOT archived: archive it again (its archived parts are kept)',
        )
    parts.mark_archived(db, folder['id'], number, room.size)
    return following, room.size


def _describe(
    ctx: TaskContext, folder: Dict, barcode: str, part: Dict, last: bool, first_path: str, last_path: str
) -> Dict[str, str]:
    """This part's description on its tape (and the catalog's copy), as every archive writes one."""
    resources = ctx.resources
    db, mountpoint, general = resources.db, resources.mountpoint, resources.config.general
    number = part['part']
    written = tapedesc.back_up_catalog(db, mountpoint, general.scratch_path, general.catalog_backup)
    record = {**folders.get(db, folder['id']), 'tape': barcode, 'tape_path': part['tape_path']}
    held = [piece for piece in parts.pieces(db, folder['id']) if piece['part'] == number]
    place = {'part': number, 'last': last, 'first_path': first_path, 'last_path': last_path, 'pieces': held}
    entries = folders.entries(db, folders.manifest_of(folder), first=first_path, last=last_path)
    written.update(tapedesc.write(mountpoint, record, entries, place))
    return written


def _write_piece(
    ctx: TaskContext,
    folder: Dict,
    number: int,
    barcode: str,
    row: Dict,
    destination: str,
    room: Room,
    progress: Progress,
) -> int:
    """Write the next piece of a file too large for one tape, as much as the tape takes; -> the
    byte of the file after it. The whole file's checksum is carried from its first byte: the bytes
    before this piece are read again from the source and must match the pieces already archived."""
    db = ctx.resources.db
    before = [piece for piece in parts.pieces(db, folder['id'], row['path']) if piece['part'] < number]
    start = sum(piece['size'] for piece in before)
    size = min(row['size'] - start, room.piece())
    if size <= 0:
        raise ToolError(f'{barcode} has no room left for a piece of {row["path"]}: name another tape')
    source = os.path.join(folder['path'], row['path'])
    archive.check_unchanged(source, row, folder['path'], 'since prepare')
    whole = blake3.blake3(max_threads=blake3.blake3.AUTO)
    try:
        for piece in before:
            if transfer.hash_range(source, piece['start'], piece['size'], whole) != piece['checksum']:
                raise transfer.SourceChanged(source)
        target = os.path.join(destination, parts.piece_name(row['path'], start))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        checksum = transfer.copy_range(source, target, start, size, whole, progress.following(ctx))
    except transfer.SourceChanged:
        raise ToolError(
            f'{source} changed while being archived: prepare {folder["path"]} again when it is quiet'
        ) from None
    parts.record_piece(db, folder['id'], row['path'], start, size, number, checksum)
    room.took_piece(size)
    if start + size == row['size']:
        folders.record_checksums(db, folder['id'], [(row['path'], whole.hexdigest())])
    ctx.checkpoint()
    return start + size


def _last_before(db: Database, folder: Dict, first: str, stop: Optional[str]) -> str:
    """The last manifest path of a part that starts at `first` and ends before `stop` (or the end)."""
    where, args = 'folder = ? AND path >= ?', [folders.manifest_of(folder), first]
    if stop is not None:
        where += ' AND path < ?'
        args.append(stop)
    return db.query(f'SELECT MAX(path) FROM manifest WHERE {where}', args)[0][0]
