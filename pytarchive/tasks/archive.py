"""`pytarchive archive PATH BARCODE`: copy a prepared folder to a tape, read it all back, compare.

Order of work, each step safe to run again after a crash or a stop:
  1. load and mount the tape; refuse before writing anything if the folder does not fit;
  2. copy, hashing what is read from the source (the checksums go to the manifest as they come);
     a file that changed since prepare, or while it was copied, fails the task;
  3. unmount (LTFS writes its index), mount read-only, read every file back and compare with the
     manifest: the bytes compared come from the tape, not from memory;
  4. record the tape's use, then mark the folder archived (and so deleteable).
A run cut short leaves the folder 'archiving': run again on the same tape, it skips the files
already copied with a checksum, copies the rest and verifies everything. If the run was cut short
by the death of ltfs, the volume first needs ltfsck (resources.py), which drops what was written
after the last index: the files it dropped are simply missing or shorter on the volume, so they are
copied again, and the result says what ltfsck did. Cut short after step 4,
the run again finds the folder archived on that tape since the task was queued, and reports it
done: nothing is copied twice. A copy that fails is removed from the tape: a partial copy is no
archive, and nothing would ever reclaim it.
"""

import collections
import errno
import logging
import os
import shutil
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from common.errors import ToolError
from pytarchive import tapedesc, transfer
from pytarchive.library.errors import DriveError
from pytarchive.progress import Progress
from pytarchive.resources import DriveResources
from pytarchive.state import folders, parts, tapes
from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskContext
from pytarchive.units import human_bytes, sizes_apart
from pytarchive.walk import DIR, FILE, LINK

log = logging.getLogger(__name__)
PACKED_SUFFIX = '.tar.zst'
_CHECKSUM_BATCH = 1000
_SHOWN = 5  # failing files named in a message
# What a FUSE mount answers once its daemon died: the write in flight, then everything after it.
LTFS_GONE = (errno.ECONNABORTED, errno.ENOTCONN)


def run(ctx: TaskContext, path: str, barcode: str, more_tapes: Sequence[str] = ()) -> str:
    """more_tapes: further tapes for a folder larger than one (tasks.spanned archives it in parts)."""
    resources = ctx.resources
    db = resources.db
    folder = folders.latest(db, path, (folders.PREPARED, folders.ARCHIVING, folders.FAILED, folders.ARCHIVED))
    if folder is not None and folder['state'] == folders.ARCHIVED:
        return _archived_already(ctx, folder, barcode)
    if folder is None:
        raise ToolError(f'{path} is not prepared: run `pytarchive prepare {path} "description"` first')
    if (more_tapes or parts.of(db, folder['id'])) and not folder['packed']:
        from pytarchive.tasks import spanned  # it builds on this module's copy and verification

        return spanned.run(ctx, folder, [barcode, *more_tapes])
    if folder['packed'] and not os.path.exists(folder['packed']):
        raise ToolError(f'the packed copy {folder["packed"]} is gone (scratch cleaned?): prepare {path} again')
    if tapes.is_full(db, barcode):
        raise ToolError(
            f'{barcode} is full (it ran out of space before and LTFS never gives space back): use another tape'
        )
    with resources.tape_mounted(barcode) as slot:
        tapes.record_formatted(db, barcode, slot)  # a tape loaded by barcode that no scan listed yet
        try:
            return archive_mounted(ctx, folder, barcode, slot)
        except BaseException:
            record_space(resources, barcode, slot)  # what a failure left on the tape (a success records it itself)
            raise


def tapes_needed(db: Database, path: str, barcode: str, more_tapes: Sequence[str] = ()) -> List[str]:
    """The tapes an archive loads beyond BARCODE (a folder archived in parts)."""
    return list(more_tapes)


def _archived_already(ctx: TaskContext, folder: Dict, barcode: str) -> str:
    """The path's newest record is archived. Archived to this tape after the task was queued, it was
    this task (cut short between 'archived' and 'done', then requeued) or one queued with it: done."""
    if folder['tape'] != barcode or folder['archived'] < ctx.task.created:
        raise ToolError(
            f'{folder["path"]} is already archived to {folder["tape"]} (since {folder["archived"]}): '
            f'prepare it again to archive another copy'
        )
    if folder['packed']:
        _remove(folder['packed'])  # the scratch copy a crash may have left behind
    return archived_text(folder, barcode, folder['tape_path'], folder['archived_bytes'])


def archived_text(folder: Dict, barcode: str, tape_path: str, archived_bytes: int, recovery: str = '') -> str:
    text = (
        f'{folder["path"]} archived to {barcode} as {tape_path} and verified: {folder["file_count"]} files, '
        f'{human_bytes(archived_bytes)}'
    )
    return f'{text}; {recovery}' if recovery else text


def record_space(resources: DriveResources, barcode: str, slot: Optional[int]) -> None:
    """The tape's use as the volume reports it; never hides the failure that ended the task."""
    try:
        total, free = resources.drive.space()
    except DriveError as exc:
        log.warning('could not read the space of %s: %s', barcode, exc)
        return
    tapes.record_space(resources.db, barcode, slot, capacity=total, used=total - free)


def archive_mounted(ctx: TaskContext, folder: Dict, barcode: str, slot: Optional[int], root: str = '') -> str:
    """Copy, read back, record. root: where the bytes are read from when not from the folder itself
    (or, packed, its tar.zst in scratch_path): for a further copy, the folder (or tar.zst) staged out
    of another tape or on another drive's tape."""
    resources = ctx.resources
    db, mountpoint = resources.db, resources.mountpoint
    resuming = folder['state'] == folders.ARCHIVING and folder['tape'] == barcode and folder['tape_path']
    tape_path = folder['tape_path'] if resuming else free_tape_path(mountpoint, folder)
    source = root or folder['packed'] or folder['path']
    _check_space(resources, folder, barcode, resuming, source)
    folders.start_archive(db, folder['id'], barcode, tape_path, resuming)
    destination = os.path.join(mountpoint, tape_path)
    ctx.checkpoint()
    try:
        copy = _copy_packed if folder['packed'] else _copy_tree
        archived_bytes = copy(ctx, folder, destination, resuming, source)
        # The tape describes itself (header, manifest, a copy of the catalog) before the read-back checks it all.
        general = resources.config.general
        written = tapedesc.back_up_catalog(db, mountpoint, general.scratch_path, general.catalog_backup)
        written.update(
            tapedesc.write(mountpoint, folders.get(db, folder['id']), folders.entries(db, folders.manifest_of(folder)))
        )
    except (ToolError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            tapes.record_full(db, barcode)
        raise failed(db, folder, copy_failure(exc, folder, barcode, destination)) from None
    ctx.checkpoint()
    try:
        resources.remount_read_only()
        verify = verify_packed if folder['packed'] else verify_tree
        bad = verify(ctx, folder, destination) + tapedesc.check(mountpoint, written)
    except ToolError as exc:
        withdraw_description(resources, written)
        raise failed(db, folder, exc.message) from None
    except OSError as exc:
        withdraw_description(resources, written)
        raise failed(db, folder, f'{exc.filename or destination}: {exc.strerror}') from None
    if bad:
        withdraw_description(resources, written)
        shown = '; '.join(f'{name}: {why}' for name, why in bad[:_SHOWN])
        more = f' and {len(bad) - _SHOWN} more' if len(bad) > _SHOWN else ''
        raise failed(
            db,
            folder,
            f'verification failed on {barcode} for {len(bad)} entries: {shown}{more}; '
            f'{folder["path"]} is NOT archived (not deleteable): archive it again',
        )
    record_space(resources, barcode, slot)  # before 'archived': a crash after that mark leaves nothing to redo
    folders.mark_archived(db, folder['id'], archived_bytes)
    if folder['packed'] and not root:
        _remove(folder['packed'])  # pytarchive's own scratch copy, now safely on tape
    return archived_text(folder, barcode, tape_path, archived_bytes, resources.recovery or '')


def withdraw_description(resources: DriveResources, written: Dict[str, str]) -> None:
    """A copy that failed its read-back must not be described on the tape: an import would take it for
    an archive. Best effort (the volume mounted read-write again); a failure is logged."""
    try:
        resources.drive.unmount()
        resources.mount()
        tapedesc.withdraw(resources.mountpoint, written)
    except (ToolError, OSError) as exc:
        log.warning('could not remove the description of a copy that failed its read-back: %s', exc)


def failed(db: Database, folder: Dict, message: str) -> ToolError:
    folders.mark_failed(db, folder['id'], message)
    return ToolError(message)


def copy_failure(exc: Exception, folder: Dict, barcode: str, destination: str) -> str:
    """Why the copy failed, once its partial copy is off the tape (a failed folder is copied afresh)."""
    removed = (
        'the partial copy was removed'
        if _remove(destination)
        else f'its partial copy {destination} could not be removed from the tape'
    )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (
            f'{barcode} became full while copying {folder["path"]}: nothing archived, {removed} (LTFS does '
            f'not give the space back: {barcode} is recorded full and takes no more archives); archive it '
            f'to another tape'
        )
    why = exc.message if isinstance(exc, ToolError) else f'{exc.filename or destination}: {exc.strerror}'
    if isinstance(exc, OSError) and exc.errno in LTFS_GONE:
        why += f' (the ltfs process serving {barcode} is gone: its next mount checks the volume)'
    return f'{why}; {folder["path"]} is NOT archived, {removed}'


def free_tape_path(mountpoint: str, folder: Dict) -> str:
    """The folder's own path on the tape (so explore shows familiar paths), made unique if taken."""
    # Never the tape's root: a failed copy is removed, and that must not take other folders with it.
    base = (folder['path'].strip('/') or f'folder-{folder["id"]}') + (PACKED_SUFFIX if folder['packed'] else '')
    if base.split('/')[0] == tapedesc.DIRECTORY:  # the tape's own description folder is never an archive's
        base = f'folder-{folder["id"]}-{base}'
    if not os.path.lexists(os.path.join(mountpoint, base)):
        return base
    stem = base[: -len(PACKED_SUFFIX)] if folder['packed'] else base
    return f'{stem}.{folder["id"]}' + (PACKED_SUFFIX if folder['packed'] else '')


# What a volume needs beyond the files' own records. LTFS writes its index (about this many bytes
# per entry) to the data partition at every sync and at unmount; near the end of a tape it can drop
# writes it had accepted (about 13 MB seen) before ENOSPC comes, and its free space overstates what
# fits by about 1 MB. So an archive starts only with this reserve to spare.
INDEX_BYTES_PER_ENTRY = 1024
RESERVE_BYTES = 32 * 1024 * 1024


def _needed_bytes(db: Database, folder: Dict, block: int, source: str) -> int:
    """Bytes the folder takes on a volume with this block size: each file's data is written as records
    of up to one block, each counted whole; folders and links live in the index only; plus two copies
    of the index entries and the reserve."""
    if folder['packed']:
        data, entries = blocks(os.path.getsize(source), block), 1
    else:
        data = entries = 0
        for row in folders.entries(db, folders.manifest_of(folder)):
            entries += 1
            data += blocks(row['size'], block) if row['kind'] == FILE else 0
    described = tapedesc.reserve(
        db, folders.manifest_of(folder), block
    )  # the tape's description of it, the catalog's copy
    return data + 2 * blocks(entries * INDEX_BYTES_PER_ENTRY, block) + RESERVE_BYTES + described


def blocks(size: int, block: int) -> int:
    return -(-size // block) * block


def _check_space(resources: DriveResources, folder: Dict, barcode: str, resuming: bool, source: str) -> None:
    if resuming:
        return  # part of it is on the tape already; a full tape still fails cleanly mid-copy
    total, free = resources.drive.space()
    block = os.statvfs(resources.mountpoint).f_frsize
    needed = _needed_bytes(resources.db, folder, block, source)
    if needed > free:
        raise ToolError(
            f'{folder["path"]} needs {human_bytes(needed)} on tape but {barcode} has only '
            f'{human_bytes(free)} free (of {human_bytes(total)}): nothing written; use another tape'
            + ('' if folder['packed'] else f', or name several to archive it in parts ({barcode},TAPE2,...)')
        )
    limit = resources.config.general.tape_max_size
    if limit and (total - free) + needed > limit:
        raise ToolError(
            f'{folder["path"]} needs {human_bytes(needed)}; with {human_bytes(total - free)} already on '
            f'{barcode} that passes [General] tape_max_size ({human_bytes(limit)}): nothing written'
        )


def _copy_packed(ctx: TaskContext, folder: Dict, destination: str, resuming: bool, source: str) -> int:
    size = os.path.getsize(source)
    progress = Progress(ctx, 'copying', bytes_total=size, files_total=1)
    if resuming and folder['packed_checksum'] and _same_size(destination, size):
        return size  # copied whole before the run was cut short; verification reads it all
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    try:
        checksum = transfer.copy_file(source, destination, on_chunk=progress.following(ctx))
    except transfer.SourceChanged:
        raise ToolError(
            f'the packed copy {source} changed while being archived: prepare {folder["path"]} again'
        ) from None
    if folder['copy_of'] and checksum != folders.get(ctx.resources.db, folder['copy_of'])['packed_checksum']:
        raise ToolError(f'{source} differs from the packed copy that was archived first: copy it again')
    folders.set_packed_checksum(ctx.resources.db, folder['id'], checksum)
    progress.file_done(size, 0)
    progress.flush()
    return size


def verify_packed(ctx: TaskContext, folder: Dict, destination: str, _part: None = None) -> List[Tuple[str, str]]:
    size = os.path.getsize(destination)
    progress = Progress(ctx, 'verifying', bytes_total=size, files_total=1)
    expected = folders.get(ctx.resources.db, folder['id'])['packed_checksum']
    found = transfer.hash_file(destination, on_chunk=progress.following(ctx))
    progress.file_done(size, 0)
    progress.flush()
    return [] if found == expected else [(os.path.basename(destination), 'checksum differs from the packed copy')]


def _copy_tree(ctx: TaskContext, folder: Dict, destination: str, resuming: bool, root: str) -> int:
    progress = Progress(ctx, 'copying', bytes_total=folder['source_bytes'], files_total=folder['file_count'])
    copy_rows(
        ctx,
        folder,
        folders.entries(ctx.resources.db, folders.manifest_of(folder)),
        destination,
        resuming,
        root,
        progress,
    )
    progress.flush()
    return folder['source_bytes']


# room(row, on_tape): whether the tape has room for this row (on_tape: a file a run cut short copied).
Room = Callable[[Dict, bool], bool]


def copy_rows(
    ctx: TaskContext,
    folder: Dict,
    rows: Iterable[Dict],
    destination: str,
    resuming: bool,
    root: str,
    progress: Progress,
    room: Optional[Room] = None,
) -> Optional[Dict]:
    """Copy manifest rows from root to destination; -> the row the tape had no room for (the copy
    stops before it), or None when every row was copied.

    A first archive records each file's checksum as it is read; a further copy must read the very
    checksums its first record holds (the same bytes), and records none."""
    db, further = ctx.resources.db, bool(folder['copy_of'])
    os.makedirs(destination, exist_ok=True)
    made = {destination}
    checksums: List[Tuple[str, str]] = []
    try:
        for row in rows:
            target = os.path.join(destination, row['path'])
            on_tape = bool(resuming and row['kind'] == FILE and row['checksum'] and _same_size(target, row['size']))
            if room is not None and not room(row, on_tape):
                return row
            if row['kind'] == DIR:
                os.makedirs(target, exist_ok=True)
                made.add(target)
                continue
            if os.path.dirname(target) not in made:  # a part of a folder may start inside a sub-folder
                os.makedirs(os.path.dirname(target), exist_ok=True)
                made.add(os.path.dirname(target))
            if row['kind'] == LINK:
                transfer.make_link(row['target'], target)
            elif on_tape:
                # Copied before the run was cut short; the source may have been edited since.
                if not further:
                    check_unchanged(os.path.join(root, row['path']), row, root, 'since prepare')
                progress.add(row['size'], files=1)
            else:
                source = os.path.join(root, row['path'])
                started_at = progress.bytes_done
                if further:
                    _copy_same(source, target, row, folder, progress.following(ctx))
                else:
                    check_unchanged(source, row, root, 'since prepare')
                    checksums.append((row['path'], _copy_unchanged(source, target, row, root, progress.following(ctx))))
                os.utime(target, (row['mtime'], row['mtime']))
                progress.file_done(row['size'], started_at)
                if len(checksums) >= _CHECKSUM_BATCH:
                    folders.record_checksums(db, folder['id'], checksums)
                    checksums = []
                ctx.checkpoint()
    finally:  # however the copy ends, what was copied keeps its checksum for a resumed run
        folders.record_checksums(db, folder['id'], checksums)
    return None


def _same_size(path: str, size: int) -> bool:
    try:
        return os.lstat(path).st_size == size
    except FileNotFoundError:
        return False


def _copy_unchanged(source: str, target: str, row: Dict, root: str, on_chunk: transfer.OnChunk) -> str:
    """copy_file, failing when the source was written while it was read, or between the check before
    the copy and the open (then the file copied, unchanged during the copy, is not the one prepared)."""
    try:
        checksum = transfer.copy_file(source, target, on_chunk)
    except transfer.SourceChanged:
        raise ToolError(f'{source} changed while being archived: prepare {root} again when it is quiet') from None
    check_unchanged(source, row, root, 'while being archived')
    return checksum


def _copy_same(source: str, target: str, row: Dict, folder: Dict, on_chunk: transfer.OnChunk) -> None:
    """A further copy's file: the bytes read must be those its first archive recorded."""
    try:
        checksum = transfer.copy_file(source, target, on_chunk)
    except FileNotFoundError:
        raise ToolError(f'{source} is gone: copy {folder["path"]} from tape (`pytarchive copy --from-tape`)') from None
    except transfer.SourceChanged:
        checksum = None
    if checksum != row['checksum']:
        raise ToolError(
            f'{source} is not what was archived (changed since): a copy must hold the archived bytes; '
            f'copy {folder["path"]} from tape (`pytarchive copy --from-tape`)'
        )


def check_unchanged(source: str, row: Dict, root: str, when: str) -> None:
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        raise ToolError(f'{source} was deleted {when}: prepare {root} again') from None
    if info.st_size != row['size'] or info.st_mtime != row['mtime']:
        then, now = sizes_apart(row['size'], info.st_size)
        raise ToolError(f'{source} changed {when} ({then} then, {now} now): prepare {root} again when it is quiet')


def verify_tree(ctx: TaskContext, folder: Dict, destination: str, part: Optional[Dict] = None) -> List[Tuple[str, str]]:
    """Read every file back from the tape; check every directory and link. Returns what differs.
    part: only the rows of that part of a folder archived across tapes, and the pieces it holds of
    files cut across tapes (each against its own checksum)."""
    db = ctx.resources.db
    span = {'first': part['first_path'], 'last': part['last_path']} if part else {}
    pieces = parts.pieces(db, folders.manifest_of(folder)) if part else []
    cut = {piece['path'] for piece in pieces}
    totals = {} if part else {'bytes_total': folder['source_bytes'], 'files_total': folder['file_count']}
    progress = Progress(ctx, 'verifying', **totals)
    bad: List[Tuple[str, str]] = []
    for row in folders.entries(db, folders.manifest_of(folder), **span):
        target = os.path.join(destination, row['path'])
        if row['kind'] == DIR and not os.path.isdir(target):
            bad.append((row['path'], 'directory missing on tape'))
        elif row['kind'] == LINK and _readlink(target) != row['target']:
            bad.append((row['path'], 'link missing or pointing elsewhere on tape'))
    expected: collections.deque = collections.deque()

    def files() -> Iterator[str]:
        for row in folders.entries(db, folders.manifest_of(folder), kind=FILE, **span):
            if row['path'] not in cut:
                expected.append(row)
                yield os.path.join(destination, row['path'])
        for piece in pieces:
            if piece['part'] == part['part']:
                expected.append({**piece, 'path': parts.piece_name(piece['path'], piece['start'])})
                yield os.path.join(destination, expected[-1]['path'])

    for _path, found in transfer.hash_files(files()):  # one file at a time: a tape must not seek
        row = expected.popleft()
        if isinstance(found, OSError):
            bad.append((row['path'], f'unreadable on tape: {found.strerror}'))
        elif found != row['checksum']:
            bad.append((row['path'], 'checksum differs from the source'))
        progress.add(row['size'], files=1)
        ctx.checkpoint()
    progress.flush()
    return bad


def _readlink(path: str) -> Optional[str]:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _remove(path: str) -> bool:
    """Remove pytarchive's own copy (on tape, or the scratch archive); False if it could not be."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
    except OSError as exc:
        log.warning('could not remove %s: %s', path, exc.strerror)
        return False
    return True
