"""`pytarchive verify BARCODE | PATH`: fixity. Re-read a tape's archives (or the newest archive of
one folder) from the tape against the checksums recorded when they were archived, restoring
nothing, and record on each archive and on the tape when that was and how it went. Tapes decay;
periodic re-reads against stored checksums are how an archive learns of it while the originals
may still exist. An archive whose copy no longer matches is no longer `deleteable`.
"""

import os
from typing import Dict, List, Optional, Tuple

from common.errors import ToolError
from pytarchive.state import folders, parts, tapes
from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskContext
from pytarchive.tasks.archive import verify_packed, verify_tree
from pytarchive.units import human_bytes

_SHOWN = 5


def run(ctx: TaskContext, barcode: str, path: str = '') -> str:
    resources = ctx.resources
    db = resources.db
    checks = _checks(db, barcode, path)
    if not checks:
        raise ToolError(f'{path or barcode} has no archive on {barcode} to verify')
    checked: List[Tuple[Dict, List[Tuple[str, str]]]] = []
    for tape in dict.fromkeys(tape for tape, _, _ in checks):  # each tape once, in the order first named
        with resources.tape_mounted(tape, read_only=True):
            for _, folder, part in (check for check in checks if check[0] == tape):
                ctx.checkpoint()
                tape_path = part['tape_path'] if part else folder['tape_path']
                destination = os.path.join(resources.mountpoint, tape_path)
                if not os.path.lexists(destination):
                    bad = [(tape_path, 'missing on tape')]
                else:
                    bad = (verify_packed if folder['packed'] else verify_tree)(ctx, folder, destination, part)
                _record(db, folder, part, bad)
                checked.append((folder, bad))
    failed = [(folder, bad) for folder, bad in checked if bad]
    if not path:  # a tape's check is the whole tape's
        tapes.record_fixity(db, barcode, 'ok' if not failed else f'{len(failed)} of {len(checked)} archives differ')
    if failed:
        shown = '; '.join(f'{folder["path"]}: {_result(bad)}' for folder, bad in failed)
        raise ToolError(
            f'fixity check of {", ".join(dict.fromkeys(t for t, _, _ in checks))}: {len(failed)} of {len(checked)} '
            f'archives no longer match their checksums ({shown}); they are no longer deleteable: keep the '
            f'originals and archive them again'
        )
    archives = {folder['id']: folder for folder, _ in checked}.values()  # a folder in parts once
    files = sum(folder['file_count'] or 0 for folder in archives)
    size = sum(folder['source_bytes'] or 0 for folder in archives)
    what = path if path else f'{len(checked)} archives'
    where = ', '.join(dict.fromkeys(t for t, _, _ in checks))
    return f'{what} on {where}: {files} files, {human_bytes(size)} re-read and matching their checksums'


def tapes_needed(db: Database, barcode: str, path: str = '') -> List[str]:
    """The tapes a verify loads: BARCODE, or every tape holding a part of PATH's archive."""
    return [tape for tape, _, _ in _checks(db, barcode, path)]


def _checks(db: Database, barcode: str, path: str) -> List[Tuple[str, Dict, Optional[Dict]]]:
    """(tape, archive, part or None) to re-read: a tape's whole archives and the parts it holds of
    folders archived across tapes; or, for a path, its newest archive on that tape, every part of it
    when it was archived across tapes (each tape in turn)."""
    found: List[Tuple[str, Dict, Optional[Dict]]] = []
    held = folders.archived_on(db, barcode)
    if path:
        held = [folder for folder in held if folder['path'] == path][-1:]
        for folder in held:
            spread = [part for part in parts.of(db, folder['id']) if part['state'] == parts.ARCHIVED]
            found += [(part['tape'], folder, part) for part in spread] or [(barcode, folder, None)]
        return found
    found += [(barcode, folder, None) for folder in held if not parts.of(db, folder['id'])]
    for part in parts.on_tape(db, barcode):
        if part['folder_state'] == folders.ARCHIVED and part['state'] == parts.ARCHIVED:
            found.append((barcode, folders.get(db, part['folder']), part))
    return found


def _record(db: Database, folder: Dict, part: Optional[Dict], bad: List[Tuple[str, str]]) -> None:
    """On the archive (and the part): a part that differs marks its folder; one that matches clears
    the folder's mark only when no other part of it was found differing."""
    if part is None:
        folders.record_fixity(db, folder['id'], _result(bad))
        return
    parts.record_fixity(db, folder['id'], part['part'], _result(bad))
    others = [p for p in parts.of(db, folder['id']) if p['part'] != part['part']]
    if bad:
        folders.record_fixity(db, folder['id'], f'part {part["part"]} on {part["tape"]}: {_result(bad)}')
    elif all(p['fixity_result'] in (None, 'ok') for p in others):
        folders.record_fixity(db, folder['id'], 'ok')


def _result(bad: List[Tuple[str, str]]) -> str:
    if not bad:
        return 'ok'
    shown = ', '.join(f'{name}: {why}' for name, why in bad[:_SHOWN])
    return f'{len(bad)} entries differ ({shown}{" and more" if len(bad) > _SHOWN else ""})'
