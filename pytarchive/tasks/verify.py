"""`pytarchive verify BARCODE | PATH`: fixity. Re-read a tape's archives (or the newest archive of
one folder) from the tape against the checksums recorded when they were archived, restoring
nothing, and record on each archive and on the tape when that was and how it went. Tapes decay;
periodic re-reads against stored checksums are how an archive learns of it while the originals
may still exist. An archive whose copy no longer matches is no longer `deleteable`.
"""

import os
from typing import Dict, List, Tuple

from common.errors import ToolError
from pytarchive.state import folders, tapes
from pytarchive.taskqueue import TaskContext
from pytarchive.tasks.archive import verify_packed, verify_tree
from pytarchive.units import human_bytes

_SHOWN = 5


def run(ctx: TaskContext, barcode: str, path: str = '') -> str:
    resources = ctx.resources
    db = resources.db
    held = folders.archived_on(db, barcode)
    targets = [folder for folder in held if not path or folder['path'] == path][-1:] if path else held
    if not targets:
        raise ToolError(f'{path or barcode} has no archive on {barcode} to verify')
    checked: List[Tuple[Dict, List[Tuple[str, str]]]] = []
    with resources.tape_mounted(barcode, read_only=True):
        for folder in targets:
            ctx.checkpoint()
            destination = os.path.join(resources.mountpoint, folder['tape_path'])
            if not os.path.lexists(destination):
                bad = [(folder['tape_path'], 'missing on tape')]
            else:
                bad = (verify_packed if folder['packed'] else verify_tree)(ctx, folder, destination)
            folders.record_fixity(db, folder['id'], _result(bad))
            checked.append((folder, bad))
    failed = [(folder, bad) for folder, bad in checked if bad]
    if not path:  # a tape's check is the whole tape's
        tapes.record_fixity(db, barcode, 'ok' if not failed else f'{len(failed)} of {len(checked)} archives differ')
    if failed:
        shown = '; '.join(f'{folder["path"]}: {_result(bad)}' for folder, bad in failed)
        raise ToolError(
            f'fixity check of {barcode}: {len(failed)} of {len(checked)} archives no longer match their checksums '
            f'({shown}); they are no longer deleteable: keep the originals and archive them again'
        )
    files = sum(folder['file_count'] or 0 for folder, _ in checked)
    size = sum(folder['source_bytes'] or 0 for folder, _ in checked)
    what = path if path else f'{len(checked)} archives'
    return f'{what} on {barcode}: {files} files, {human_bytes(size)} re-read and matching their checksums'


def _result(bad: List[Tuple[str, str]]) -> str:
    if not bad:
        return 'ok'
    shown = ', '.join(f'{name}: {why}' for name, why in bad[:_SHOWN])
    return f'{len(bad)} entries differ ({shown}{" and more" if len(bad) > _SHOWN else ""})'
