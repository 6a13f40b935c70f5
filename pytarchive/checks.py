"""The checks a request and the task it queues both make: a full path, an existing folder, a tape
barcode, an archived folder, a sub-path that stays inside it, an export target.

The service's commands run them at once, so a request bound to fail is answered in one line
instead of queued; the tasks run them again when they start, because what was true when the task
was queued (a folder archived, a path present) may have changed by the time it runs.
"""

import os
import re
from typing import Any, Dict

from common.errors import ToolError
from pytarchive.config import ExportConfig
from pytarchive.library.status import is_cleaning_tape
from pytarchive.state import folders, parts
from pytarchive.state.db import Database

_BARCODE = re.compile(r'[A-Z0-9]{6,16}')


class CheckFailed(ToolError):
    """A path, tape or folder the request or task cannot work with; the message says why."""


def full_path(value: Any) -> str:
    """A path as the commands take it: absolute (admins name folders unambiguously), normalized."""
    if not isinstance(value, str) or not value.startswith('/'):
        raise CheckFailed(f'{value!r} is not a full path (it must start with /)')
    return os.path.normpath(value)


def existing_folder(value: Any) -> str:
    """full_path() of a folder that exists."""
    path = full_path(value)
    if not os.path.isdir(path):
        raise CheckFailed(f'{path}: no such folder' if not os.path.lexists(path) else f'{path}: not a folder')
    return path


def barcode(value: Any) -> str:
    """A data tape's barcode, upper case; never a cleaning tape."""
    if not isinstance(value, str) or not _BARCODE.fullmatch(value.strip().upper()):
        raise CheckFailed(f'{value!r} is not a tape barcode (6 to 16 letters and digits, e.g. TPN001L9)')
    found = value.strip().upper()
    if is_cleaning_tape(found):
        raise CheckFailed(f'{found} is a cleaning tape: pytarchive never uses cleaning tapes for data')
    return found


def archived_folder(db: Database, path: str) -> Dict[str, Any]:
    """The newest verified archive of the path."""
    folder = folders.latest(db, path, (folders.ARCHIVED,))
    if folder is None:
        raise CheckFailed(f'{path} has no verified archive (see `pytarchive deleteable` for what is archived)')
    return folder


def copyable_folder(db: Database, path: str) -> Dict[str, Any]:
    """The newest archive of the path, of which `pytarchive copy` can make a further copy."""
    folder = archived_folder(db, path)
    if parts.of(db, folder['id']):
        raise CheckFailed(
            f'{path} was archived across several tapes: pytarchive copy copies folders archived whole to one tape'
        )
    return folder


def clean_subpath(only: str) -> str:
    """SUBPATH relative to the folder, without '.', '..' or a leading '/'."""
    parts = [part for part in only.strip('/').split('/') if part not in ('', '.')]
    if '..' in parts:
        raise CheckFailed(f'--only {only!r}: must stay inside the folder (no "..")')
    return '/'.join(parts)


def export_target(export: ExportConfig, directory: str) -> str:
    """`CLIENTS:DIRECTORY` as exportfs takes it; [Export] to must name the NFS clients."""
    if not export.to:
        raise CheckFailed('[Export] to is not set: name the NFS clients allowed to explore (e.g. 192.168.0.0/16)')
    return f'{export.to}:{directory}'
