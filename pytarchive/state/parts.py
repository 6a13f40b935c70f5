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

from typing import Any, Dict, List, Optional

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


def close(db: Database, folder_id: int, number: int, last_path: str) -> None:
    """The part ends at last_path: the next file did not fit on its tape (or the folder ended)."""
    with db.transaction() as conn:
        conn.execute('UPDATE parts SET last_path = ? WHERE folder = ? AND part = ?', (last_path, folder_id, number))


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


def record_fixity(db: Database, folder_id: int, number: int, result: str) -> None:
    with db.transaction() as conn:
        conn.execute(
            'UPDATE parts SET fixity_checked = ?, fixity_result = ? WHERE folder = ? AND part = ?',
            (now(), result, folder_id, number),
        )
