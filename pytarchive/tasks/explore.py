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


def tapes(db: Database, path: str, **_: object) -> List[str]:
    """The tape an explore of path loads (for the queue's rule: one tape, one drive at a time)."""
    return [archived_folder(db, path)['tape']]


def run(ctx: TaskContext, path: str) -> str:
    resources = ctx.resources
    export = resources.config.export
    folder = archived_folder(resources.db, path)
    resources.end_explore.clear()
    with resources.tape_mounted(folder['tape'], read_only=True):
        shown = os.path.join(resources.mountpoint, folder['tape_path'])
        directory = shown if os.path.isdir(shown) else os.path.dirname(shown)  # a packed folder: its .tar.zst's
        target = export_target(export, directory)
        _exportfs(export, '-o', export.settings, target)
        ctx.progress(step=f'exported {target} ({export.settings}); end with `pytarchive explore --stop`')
        try:
            while not resources.end_explore.wait(_POLL_S) and not ctx.stopping:
                pass
        finally:
            _exportfs(export, '-u', target)
    ended = 'the service stopped' if ctx.stopping and not resources.end_explore.is_set() else 'explore --stop'
    return f'{target} was exported read-only from {folder["tape"]}; ended by {ended}, tape back in its slot'
