"""The parts of a folder archived across several tapes (`pytarchive archive PATH TAPE1,TAPE2,...`).

A part is the manifest rows of one range of paths, in path order, written to one tape under the
folder's own path there and read back on that tape before the next part starts. A part is
'archiving' while written (its last path unknown until the tape has no room for the next file),
then 'archived' once read back and matched; the folder is archived when its last part is. A folder
archived whole to one tape has no parts.

A single file larger than what a whole tape takes is cut: its pieces go one per part, each a file
of its own on its tape (piece_name) with its own checksum, and the whole file's checksum is the
manifest's as for any file.
"""

from typing import Any, Dict, Iterable, List, Optional, Tuple

from pytarchive.state.db import Database, now

ARCHIVING, ARCHIVED = 'archiving', 'archived'


def of(db: Database, folder_id: int) -> List[Dict[str, Any]]:
    """A folder's parts by number."""
    return [dict(row) for row in db.query('SELECT * FROM parts WHERE folder = ? ORDER BY part', (folder_id,))]


def start(db: Database, folder_id: int, number: int, tape: str, tape_path: str, first_path: str) -> Dict[str, Any]:
    with db.transaction() as conn:
        conn.execute(
            'INSERT INTO parts (folder, part, tape, tape_path, first_path, state) VALUES (?, ?, ?, ?, ?, ?)',
            (folder_id, number, tape, tape_path, first_path, ARCHIVING),
        )
    return of(db, folder_id)[number - 1]


def close(db: Database, folder_id: int, number: int, last_path: str, last: bool) -> None:
    """The part ends at last_path: the next file did not fit on its tape, or (last) the folder ended."""
    with db.transaction() as conn:
        conn.execute(
            'UPDATE parts SET last_path = ?, last = ? WHERE folder = ? AND part = ?',
            (last_path, int(last), folder_id, number),
        )


def mark_archived(db: Database, folder_id: int, number: int, archived_bytes: int) -> None:
    with db.transaction() as conn:
        conn.execute(
            'UPDATE parts SET state = ?, archived_bytes = ?, archived = ? WHERE folder = ? AND part = ?',
            (ARCHIVED, archived_bytes, now(), folder_id, number),
        )


def drop(db: Database, folder_id: int, number: int) -> None:
    """Forget a part that was not archived (its copy failed and was removed from the tape)."""
    with db.transaction() as conn:
        dropped = conn.execute(
            'DELETE FROM parts WHERE folder = ? AND part = ? AND state = ?', (folder_id, number, ARCHIVING)
        ).rowcount
        if dropped:
            conn.execute('DELETE FROM pieces WHERE folder = ? AND part = ?', (folder_id, number))


def piece_name(path: str, start: int) -> str:
    """A piece's name on its tape, next to where the whole file would be: the zero-padded start
    sorts the pieces in order, so `cat NAME.pytarchive-piece-*` puts the file back together."""
    return f'{path}.pytarchive-piece-{start:020d}'


def pieces(db: Database, folder_id: int, path: Optional[str] = None) -> List[Dict[str, Any]]:
    """The pieces of the files cut across tapes (of one file), in file order."""
    where, args = ('folder = ?', [folder_id]) if path is None else ('folder = ? AND path = ?', [folder_id, path])
    return [dict(row) for row in db.query(f'SELECT * FROM pieces WHERE {where} ORDER BY path, start', args)]


def record_piece(db: Database, folder_id: int, path: str, start: int, size: int, part: int, checksum: str) -> None:
    with db.transaction() as conn:
        conn.execute(
            'INSERT OR REPLACE INTO pieces (folder, path, start, size, part, checksum) VALUES (?, ?, ?, ?, ?, ?)',
            (folder_id, path, start, size, part, checksum),
        )


def on_tape(db: Database, barcode: str) -> List[Dict[str, Any]]:
    """The parts a tape holds, each with its folder's record and how many parts the folder has."""
    return [
        dict(row)
        for row in db.query(
            'SELECT p.*, f.path, f.state AS folder_state, f.packed, f.copy_of, f.id AS folder_id, '
            '(SELECT COUNT(*) FROM parts q WHERE q.folder = p.folder) AS parts '
            'FROM parts p JOIN folders f ON f.id = p.folder WHERE p.tape = ? ORDER BY f.id, p.part',
            (barcode,),
        )
    ]


def holding(parts: List[Dict[str, Any]], path: str) -> Optional[Dict[str, Any]]:
    """The part whose range holds a manifest path."""
    for part in parts:
        if part['first_path'] <= path and (part['last_path'] is None or path <= part['last_path']):
            return part
    return None


def record_imported(
    db: Database, folder: Dict[str, Any], part: Dict[str, Any], rows: Iterable[Tuple], held: List[Dict[str, Any]]
) -> int:
    """A part read from its tape's description (pytarchive import), in one transaction: the folder's
    record (made by the first of its parts read, in whichever order, and found by path and prepared
    date by the others), the part, its manifest rows and the pieces it holds. The folder is archived
    once its parts, up to the one marked last, are all there. -> the folder's record id."""
    with db.transaction() as conn:
        found = conn.execute(
            'SELECT id FROM folders WHERE path = ? AND created = ? AND copy_of IS NULL AND id IN '
            '(SELECT folder FROM parts)',
            (folder['path'], folder['created']),
        ).fetchone()
        if found is not None:
            folder_id = found[0]
        else:
            values = {**folder, 'state': ARCHIVING}
            folder_id = conn.execute(
                f'INSERT INTO folders ({", ".join(values)}) VALUES ({", ".join("?" * len(values))})',
                tuple(values.values()),
            ).lastrowid
        if part['part'] == 1:
            conn.execute(
                'UPDATE folders SET tape = ?, tape_path = ? WHERE id = ?', (part['tape'], part['tape_path'], folder_id)
            )
        conn.execute(
            'INSERT INTO parts (folder, part, tape, tape_path, first_path, last_path, state, archived_bytes, '
            'archived, last) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
            (
                folder_id,
                part['part'],
                part['tape'],
                part['tape_path'],
                part['first_path'],
                part['last_path'],
                ARCHIVED,
                part['archived_bytes'],
                part['archived'],
                int(part['last']),
            ),
        )
        conn.executemany(  # a file cut across tapes is listed by each part holding a piece of it
            'INSERT OR IGNORE INTO manifest (folder, path, kind, size, mtime, mode, uid, gid, checksum, target) '
            'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
            ((folder_id, *row) for row in rows),
        )
        conn.executemany(
            'INSERT OR REPLACE INTO pieces (folder, path, start, size, part, checksum) VALUES (?, ?, ?, ?, ?, ?)',
            ((folder_id, p['path'], p['start'], p['size'], part['part'], p['checksum']) for p in held),
        )
        numbers = [
            row[0] for row in conn.execute('SELECT part FROM parts WHERE folder = ? ORDER BY part', (folder_id,))
        ]
        [last] = conn.execute('SELECT MAX(part) FROM parts WHERE folder = ? AND last = 1', (folder_id,)).fetchone()
        if last is not None and numbers == list(range(1, last + 1)):
            conn.execute(
                "UPDATE folders SET state = 'archived', archived = (SELECT MAX(archived) FROM parts WHERE folder = ?), "
                'verified = (SELECT MAX(archived) FROM parts WHERE folder = ?), '
                "file_count = (SELECT COUNT(*) FROM manifest WHERE folder = ? AND kind = 'file'), "
                "source_bytes = (SELECT COALESCE(SUM(size), 0) FROM manifest WHERE folder = ? AND kind = 'file'), "
                'archived_bytes = (SELECT SUM(archived_bytes) FROM parts WHERE folder = ?) WHERE id = ?',
                (folder_id,) * 6,
            )
    return folder_id


def record_fixity(db: Database, folder_id: int, number: int, result: str) -> None:
    with db.transaction() as conn:
        conn.execute(
            'UPDATE parts SET fixity_checked = ?, fixity_result = ? WHERE folder = ? AND part = ?',
            (now(), result, folder_id, number),
        )
