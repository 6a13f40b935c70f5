"""What the catalog answers a tape admin: which tape holds this file (find), what a tape or an
archived folder holds (ls), and every archive of a path (history).

A file's full path is its folder's path, '/', and its path in the manifest. A substring is found
wherever it falls in that: inside a folder's own path (every entry of the folder matches), inside
the manifest path (a scan of the narrow path index, a fraction of a second per million rows), or
across the '/' between them (the end of the pattern then starts the manifest path: an index
range). A pattern with * ? or [ is a glob matched against the whole full path, as the shell does
(case-sensitive; a glob scans the catalog).
"""

from typing import Any, Dict, List, Optional, Tuple

from pytarchive.state import parts
from pytarchive.state.db import Database

GLOB_CHARS = frozenset('*?[')
WITH_A_TAPE = ('archived', 'archiving', 'failed')  # folder states that name a tape

_ENTRY_COLUMNS = (
    "f.path || '/' || m.path AS path, m.kind, m.size, m.mtime, m.checksum, "
    'f.tape, f.state, f.archived, f.verified, f.id AS folder_id, m.path AS relative'
)


def _like_escaped(text: str) -> str:
    return text.replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_')


def find(db: Database, pattern: str, limit: int) -> Tuple[List[Dict[str, Any]], bool]:
    """Entries whose full path holds `pattern` (case-insensitive) or matches it as a glob, in
    path order, at most `limit`; -> (entries, whether more matched)."""
    folders = db.query(
        f'SELECT id, path FROM folders WHERE tape IS NOT NULL AND state IN ({",".join("?" * len(WITH_A_TAPE))})',
        WITH_A_TAPE,
    )
    if not folders:
        return [], False
    if GLOB_CHARS & set(pattern):
        rows = db.query(
            f'SELECT {_ENTRY_COLUMNS} FROM manifest m JOIN folders f ON f.id = m.folder '
            f"WHERE f.id IN ({','.join(str(f['id']) for f in folders)}) AND (f.path || '/' || m.path) GLOB ? "
            'ORDER BY 1 LIMIT ?',
            (pattern, limit + 1),
        )
        found = [dict(row) for row in rows]
        return _with_copies(db, found[:limit]), len(found) > limit
    wanted = pattern.casefold()
    keys: List[Tuple[int, str]] = []
    more = False

    def gather(sql: str, args: Tuple[Any, ...]) -> None:
        nonlocal more
        rows = db.query(sql + ' LIMIT ?', (*args, limit + 1))
        more = more or len(rows) > limit
        keys.extend((row['folder'], row['path']) for row in rows[:limit])

    ids = {f['id'] for f in folders}
    # The path index holds (path, folder): scanning it reads no more than the paths themselves.
    gather(
        "SELECT folder, path FROM manifest INDEXED BY manifest_by_path WHERE path LIKE ? ESCAPE '\\' "
        f'AND folder IN ({",".join(map(str, ids))})',
        (f'%{_like_escaped(pattern)}%',),
    )
    for folder in folders:
        own = folder['path'] + '/'
        if wanted in own.casefold():
            gather('SELECT folder, path FROM manifest WHERE folder = ? ORDER BY path', (folder['id'],))
            continue
        for cut in range(1, len(pattern)):
            if own.casefold().endswith(wanted[:cut]):
                gather(
                    "SELECT folder, path FROM manifest WHERE folder = ? AND path LIKE ? ESCAPE '\\'",
                    (folder['id'], f'{_like_escaped(pattern[cut:])}%'),
                )
    found = []
    for folder_id, path in sorted(set(keys)):
        [row] = db.query(
            f'SELECT {_ENTRY_COLUMNS} FROM manifest m JOIN folders f ON f.id = m.folder '
            'WHERE m.folder = ? AND m.path = ?',
            (folder_id, path),
        )
        found.append(dict(row))
    found.sort(key=lambda entry: entry['path'])
    return _with_copies(db, found[:limit]), more or len(found) > limit


def _with_copies(db: Database, found: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each entry's `tapes`: its archive's tape, then the tapes of that archive's further copies.
    An entry of a folder archived across tapes names the tape of the part that holds it."""
    ids = {entry['folder_id'] for entry in found}
    spread = {folder_id: parts.of(db, folder_id) for folder_id in ids}
    for entry in found:
        part = parts.holding(spread[entry['folder_id']], entry.pop('relative'))
        if part is not None:
            entry['tape'] = part['tape']
    copies: Dict[int, List[str]] = {}
    if ids:
        for row in db.query(
            f"SELECT copy_of, tape FROM folders WHERE state = 'archived' AND copy_of IN ({','.join(map(str, ids))}) "
            'ORDER BY copy_number'
        ):
            copies.setdefault(row['copy_of'], []).append(row['tape'])
    for entry in found:
        entry['tapes'] = [entry['tape'], *copies.get(entry['folder_id'], [])]
    return found


_RECORD_COLUMNS = (
    'id, path, state, tape, tape_path, file_count, source_bytes, archived_bytes, created, archived, verified, '
    'error, description, copy_of, copy_number'
)


def _records(db: Database, where: str, value: str) -> List[Dict[str, Any]]:
    return [
        dict(row) for row in db.query(f'SELECT {_RECORD_COLUMNS} FROM folders WHERE {where} = ? ORDER BY id', (value,))
    ]


def on_tape(db: Database, barcode: str) -> List[Dict[str, Any]]:
    """Every folder record that names this tape, oldest first; a folder archived across tapes is
    listed on each tape holding a part of it, with `part` ('2 of 3') and that part's path there."""
    records = {record['id']: record for record in _records(db, 'tape', barcode)}
    held = {part['folder']: part for part in parts.on_tape(db, barcode)}
    for folder_id in held.keys() - records.keys():
        records[folder_id] = dict(db.query(f'SELECT {_RECORD_COLUMNS} FROM folders WHERE id = ?', (folder_id,))[0])
    for folder_id, part in held.items():
        records[folder_id].update(part=f'{part["part"]} of {part["parts"]}', tape_path=part['tape_path'])
    return [records[folder_id] for folder_id in sorted(records)]


def history(db: Database, path: str) -> List[Dict[str, Any]]:
    """Every record of the path, prepared or archived, oldest first."""
    return _records(db, 'path', path)


def contents(db: Database, folder_id: int, under: str, limit: int) -> Tuple[List[Dict[str, Any]], int]:
    """The manifest of one archive (under a sub-path), in path order, at most `limit` entries;
    -> (entries, how many there are in all)."""
    where, args = 'folder = ?', [folder_id]
    if under:
        where += " AND (path = ? OR path LIKE ? ESCAPE '\\')"
        args += [under, f'{_like_escaped(under)}/%']
    rows = db.query(
        f'SELECT path, kind, size, mtime, checksum FROM manifest WHERE {where} ORDER BY path LIMIT ?', (*args, limit)
    )
    total = db.query(f'SELECT COUNT(*) FROM manifest WHERE {where}', args)[0][0]
    return [dict(row) for row in rows], total


def newest_with_tape(db: Database, path: str) -> Optional[Dict[str, Any]]:
    # A further copy shares its first record's manifest: the first records are the archives to list.
    records = [r for r in history(db, path) if r['tape'] and r['state'] in WITH_A_TAPE and not r['copy_of']]
    archived = [r for r in records if r['state'] == 'archived']
    return (archived or records or [None])[-1]
