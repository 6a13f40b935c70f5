"""`pytarchive explore PATH`: the folder's tape, mounted read-only and exported over NFS until --stop.

The explore task holds its drive and tape for as long as the export lasts (tasks needing that tape
wait in the queue; others run on the other drives), so the tape cannot be moved under the NFS clients. `explore --stop` or stopping the
service ends it: unexport, unmount, tape back to its slot.
"""

import os
import shlex
from typing import List

from common.errors import ToolError
from pytarchive.checks import archived_folder, export_target
from pytarchive.state import folders, parts
from pytarchive.config import ExportConfig
from pytarchive.library.commands import CommandNotRun, run_command
from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskContext

_POLL_S = 0.5
_TIMEOUT_S = 120.0


def _exportfs(export_config: ExportConfig, *arguments: str) -> None:
    argv = [*export_config.exportfs, *arguments]
    try:
        finished = run_command(argv, _TIMEOUT_S, 'exportfs in the [Export] config')
    except CommandNotRun as error:
        raise ToolError(f'{shlex.join(argv)}: {error}') from None
    if finished.returncode != 0:
        lines = (finished.stderr or finished.stdout).strip().splitlines()
        raise ToolError(f'{finished.shown}: {lines[-1] if lines else f"exit status {finished.returncode}"}')


def tapes_needed(db: Database, path: str, part: int = 1, **_: object) -> List[str]:
    """The tape an explore of path loads (for the queue's rule: one tape, one drive at a time)."""
    folder = folders.copy_to_read(db, archived_folder(db, path))
    held = parts.of(db, folder['id'])
    return [held[part - 1]['tape'] if held and part <= len(held) else folder['tape']]


def run(ctx: TaskContext, path: str, part: int = 1) -> str:
    """part: for a folder archived across tapes, the part whose tape is exported."""
    resources = ctx.resources
    export = resources.config.export
    folder = folders.copy_to_read(resources.db, archived_folder(resources.db, path))
    held = parts.of(resources.db, folder['id'])
    if held and part > len(held):
        raise ToolError(f'{path} was archived in {len(held)} parts: there is no part {part}')
    tape, tape_path = (
        (held[part - 1]['tape'], held[part - 1]['tape_path']) if held else (folder['tape'], folder['tape_path'])
    )
    resources.end_explore.clear()
    with resources.tape_mounted(tape, read_only=True):
        shown = os.path.join(resources.mountpoint, tape_path)
        directory = shown if os.path.isdir(shown) else os.path.dirname(shown)  # a packed folder: its .tar.zst's
        target = export_target(export, directory)
        _exportfs(export, '-o', export.settings, target)
        which = f'part {part} of {len(held)} on {tape}: ' if held else ''
        others = f'; the other parts: `pytarchive explore {path} --part N`' if len(held) > 1 else ''
        ctx.progress(step=f'{which}exported {target} ({export.settings}); end with `pytarchive explore --stop`{others}')
        try:
            while not resources.end_explore.wait(_POLL_S) and not ctx.stopping:
                pass
        finally:
            _exportfs(export, '-u', target)
    ended = 'the service stopped' if ctx.stopping and not resources.end_explore.is_set() else 'explore --stop'
    return f'{target} was exported read-only from {tape}; ended by {ended}, tape back in its slot'
