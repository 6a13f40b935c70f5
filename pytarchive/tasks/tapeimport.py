"""`pytarchive import BARCODE`: rebuild a tape's catalog entries from the tape alone.

The tape is loaded and mounted read-only; every archive's header and manifest are read from its
description folder (pytarchive.tapedesc) and the archive is recorded as archived on this tape,
with its manifest and checksums, each in one transaction: an import cut short keeps the archives
it recorded, and run again skips them. An archive the catalog already holds (archived on this tape
at the same tape path) is skipped and named. A tape without a description is refused.
"""

import os
from itertools import chain
from typing import Dict, Iterable, Iterator, List, Optional

from common.errors import ToolError
from pytarchive import tapedesc
from pytarchive.library.errors import DriveError
from pytarchive.progress import Progress
from pytarchive.state import folders, parts, tapes
from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskContext
from pytarchive.units import human_bytes

_SHOWN = 5


def run(ctx: TaskContext, barcode: str) -> str:
    resources = ctx.resources
    db = resources.db
    with resources.tape_mounted(barcode, read_only=True) as slot:
        tapes.record_formatted(db, barcode, slot)
        try:
            total, free = resources.drive.space()
            tapes.record_space(db, barcode, slot, capacity=total, used=total - free)
        except DriveError:
            pass  # the space is a nicety here; the archives are what import is for
        return import_mounted(db, resources.mountpoint, barcode, ctx)


def import_mounted(db: Database, mountpoint: str, barcode: str, ctx: Optional[TaskContext] = None) -> str:
    """Record every archive the mounted tape describes; -> what was imported and what skipped."""
    try:
        headers = tapedesc.listed(mountpoint)
    except tapedesc.NoDescription as exc:
        raise ToolError(
            f'{barcode} has no pytarchive description ({exc.message}): nothing imported; only tapes written by '
            f'a pytarchive that describes its archives can be imported'
        ) from None
    described = [(path, _read_header(path, barcode)) for path in headers]  # a bad header stops it before any work
    total = sum(int(fields['Files']) for _, fields in described)
    progress = Progress(ctx, 'importing', files_total=total) if ctx is not None else None
    known = {folder['tape_path'] for folder in folders.archived_on(db, barcode)}
    known |= {part['tape_path'] for part in parts.on_tape(db, barcode) if part['state'] == parts.ARCHIVED}
    imported: List[Dict] = []
    skipped: List[str] = []
    files = size = 0
    for header_path, fields in described:
        if fields['Tape path'] in known:
            skipped.append(fields['Folder'])
        else:
            manifest = os.path.join(os.path.dirname(header_path), fields['Manifest'])
            counted = Counted()
            try:
                rows = counted.rows(tapedesc.batches(manifest, fields['Manifest checksum']), fields)
                record = _record(fields, barcode, mountpoint)
                if 'Part' in fields:  # a part of a folder archived across tapes
                    parts.record_imported(db, _folder_of_part(record), _part(fields, barcode), rows, _pieces(fields))
                else:
                    folders.record_imported(db, record, rows)  # rolled back if rows raise
            except tapedesc.NoDescription as exc:
                raise ToolError(f'{barcode}: {exc.message}; {_so_far(imported, skipped)}') from None
            except OSError as exc:
                raise ToolError(f'{barcode}: {manifest}: {exc.strerror}; {_so_far(imported, skipped)}') from None
            except UnicodeEncodeError:  # prepare refuses such names, so only a hand-made description has them
                raise ToolError(
                    f'{barcode}: {fields["Manifest"]} names a path that is not UTF-8, which the catalog cannot '
                    f'hold; {_so_far(imported, skipped)}'
                ) from None
            known.add(fields['Tape path'])
            imported.append(fields)
            files, size = files + counted.files, size + counted.bytes
        if progress is not None:
            progress.add(files=int(fields['Files']))
            ctx.checkpoint()
    if progress is not None:
        progress.flush()
    text = f'{barcode}: {len(imported)} archives imported ({files} files, {human_bytes(size)})'
    if skipped:
        text += f', {len(skipped)} skipped (already in the catalog: {_listed(skipped)})'
    other = sorted({fields['Tape'] for fields in imported if fields.get('Tape') not in (None, barcode)})
    if other:
        text += f'; their headers name the tape {", ".join(other)}: recorded on {barcode}, the tape read'
    return text


def _read_header(path: str, barcode: str) -> Dict[str, str]:
    try:
        return tapedesc.read_header(path)
    except tapedesc.NoDescription as exc:
        raise ToolError(f'{barcode}: {exc.message}') from None
    except OSError as exc:
        raise ToolError(f'{barcode}: {path}: {exc.strerror}') from None


class Counted:
    """The files and bytes of the manifest rows that went by, checked against the header's at the end."""

    def __init__(self) -> None:
        self.files = self.bytes = 0

    def rows(self, batches: Iterable[tapedesc.Batch], fields: Dict[str, str]) -> Iterator[tapedesc.Row]:
        return chain.from_iterable(self._counted(batches, fields))

    def _counted(self, batches: Iterable[tapedesc.Batch], fields: Dict[str, str]) -> Iterator[Iterator[tapedesc.Row]]:
        for batch in batches:
            self.files, self.bytes = self.files + batch.files, self.bytes + batch.bytes
            yield batch.rows
        if (str(self.files), str(self.bytes)) != (fields['Files'], fields['Bytes']):
            raise tapedesc.NoDescription(
                f'{fields["Manifest"]} lists {self.files} files of {self.bytes} bytes, its header '
                f'{fields["Files"]} of {fields["Bytes"]}: the description is damaged'
            )


def _record(fields: Dict[str, str], barcode: str, mountpoint: str) -> Dict:
    packed = fields['Packed'] == 'yes'
    archived_bytes: Optional[int] = int(fields['Bytes'])
    if packed:
        try:
            archived_bytes = os.path.getsize(os.path.join(mountpoint, fields['Tape path']))
        except OSError:
            archived_bytes = None  # a restore or verify says what is wrong with it
    return {
        'path': fields['Folder'],
        'description': fields.get('Description', ''),
        'tape': barcode,
        'tape_path': fields['Tape path'],
        'source_bytes': int(fields['Bytes']),
        'archived_bytes': archived_bytes,
        'file_count': int(fields['Files']),
        'created': fields.get('Prepared') or fields.get('Archived') or '',
        'archived': fields.get('Archived'),
        'verified': fields.get('Archived'),
        'packed': (fields.get('Packed copy') or 'packed') if packed else None,
        'packed_checksum': fields.get('Packed checksum') if packed else None,
        'copy_number': int(fields.get('Copy') or 1),
    }


def _folder_of_part(record: Dict) -> Dict:
    """What a part's header says of its folder: the rest (tape, counts, dates) comes from its parts."""
    return {key: record[key] for key in ('path', 'description', 'created', 'copy_number')}


def _part(fields: Dict[str, str], barcode: str) -> Dict:
    try:
        number = int(fields['Part'])
        return {
            'part': number,
            'last': fields['Last part'] == 'yes',
            'first_path': fields['First path'],
            'last_path': fields['Last path'],
            'tape': barcode,
            'tape_path': fields['Tape path'],
            'archived_bytes': int(fields['Bytes']),
            'archived': fields.get('Archived'),
        }
    except (KeyError, ValueError):
        raise tapedesc.NoDescription(f'{fields["Manifest"]}: its header names a part without its place') from None


def _pieces(fields: Dict[str, str]) -> List[Dict]:
    try:
        return tapedesc.read_pieces(fields)
    except ValueError:
        raise tapedesc.NoDescription(f'{fields["Manifest"]}: its header names a piece it cannot read') from None


def _listed(paths: List[str]) -> str:
    return ', '.join(paths[:_SHOWN]) + (f' and {len(paths) - _SHOWN} more' if len(paths) > _SHOWN else '')


def _so_far(imported: List[Dict], skipped: List[str]) -> str:
    return f'{len(imported)} archives imported before it, {len(skipped)} skipped'
