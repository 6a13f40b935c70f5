"""`pytarchive prepare PATH "description"`: record a folder's manifest; pack it if it has too many files.

LTFS handles hundreds of thousands of small files badly (each costs tape blocks and index space),
so a folder with more files than [General] pack_threshold is packed into one tar.zst in
scratch_path. The walk and the packing overlap: tar reads the names as the walk finds them, so
prepare takes about as long as `tar -c | zstd` alone, and there is never an uncompressed copy.
"""

import contextlib
import itertools
import os
from typing import Iterator, List

from common.errors import ToolError
from pytarchive import packing
from pytarchive.checks import existing_folder
from pytarchive.config import Config
from pytarchive.progress import Progress
from pytarchive.state import folders
from pytarchive.taskqueue import TaskContext
from pytarchive.units import human_bytes
from pytarchive.walk import FILE, Entry, Walk


def scratch_copy(config: Config, folder_id: int) -> str:
    return os.path.join(config.general.scratch_path, f'pytarchive-{folder_id}.tar.zst')


def run(ctx: TaskContext, path: str, description: str = '') -> str:
    root = existing_folder(path)
    resources = ctx.resources
    threshold = resources.config.general.pack_threshold
    folder_id, replaced = folders.start_prepare(resources.db, root, description)
    for old_id in replaced:  # pytarchive's own scratch files (whole or cut short), never an original
        for name in (scratch_copy(resources.config, old_id), scratch_copy(resources.config, old_id) + '.partial'):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
    progress = Progress(ctx, 'listing')
    walk = Walk(root)
    entries = folders.recording(resources.db, folder_id, _counted(walk.entries(), progress, ctx))
    try:
        head = _paths_until_more_files_than(entries, threshold)
        packed = packed_bytes = None
        notes: List[str] = []
        vanished = []
        if progress.files_done > threshold:
            packed = scratch_copy(resources.config, folder_id)
            ctx.progress(step='listing and packing')
            members = itertools.chain(head, (entry.path for entry in entries))
            result = packing.pack(root, members, packed)
            vanished = result.vanished
            folders.remove_entries(resources.db, folder_id, vanished)
            packed_bytes = result.size
            if result.changed:
                notes.append(
                    f'{len(result.changed)} files changed while being packed (e.g. {result.changed[0]}): '
                    f'prepare again when the folder is quiet'
                )
    except OSError as exc:
        raise ToolError(f'{exc.filename or root}: cannot read: {exc.strerror}') from None
    if walk.twins and not packed:
        first, second = walk.twins[0]
        more = f' (and {len(walk.twins) - 1} more pairs)' if len(walk.twins) > 1 else ''
        raise ToolError(
            f'{ascii(first)[1:-1]} and {ascii(second)[1:-1]} in {root} differ only in Unicode normalisation{more}: '
            f'LTFS stores names in NFC, so they would be one file on tape; rename one and prepare again'
        )
    progress.flush()
    folder = folders.finish_prepare(resources.db, folder_id, packed, packed_bytes)
    vanished = [*walk.vanished, *vanished]
    if vanished:
        notes.append(
            f'{len(vanished)} entries vanished while being read and are not in the manifest (e.g. {vanished[0]})'
        )
    if walk.skipped:
        notes.append(f'{len(walk.skipped)} sockets, pipes or devices skipped (e.g. {walk.skipped[0]})')
    text = f'{root} prepared: {folder["file_count"]} files, {human_bytes(folder["source_bytes"])}'
    if packed:
        text += f'; more than {threshold} files, so packed into {packed} ({human_bytes(packed_bytes)})'
    return '; '.join([text, *notes])


def _counted(entries: Iterator[Entry], progress: Progress, ctx: TaskContext) -> Iterator[Entry]:
    for entry in entries:
        if entry.kind == FILE:
            progress.add(entry.size, files=1)
        if ctx.stopping:  # the service is stopping: the record stays 'preparing'; requeue starts over
            ctx.checkpoint()
        yield entry


def _paths_until_more_files_than(entries: Iterator[Entry], threshold: int) -> List[str]:
    """Consume entries until the (threshold + 1)th file or the end; return their paths."""
    head, files = [], 0
    for entry in entries:
        head.append(entry.path)
        files += entry.kind == FILE
        if files > threshold:
            break
    return head
