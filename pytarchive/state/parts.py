"""The parts of a folder archived across several tapes (`pytarchive archive PATH TAPE1,TAPE2,...`).

A part is the manifest rows of one range of paths, in path order, written to one tape under the
folder's own path there and read back on that tape before the next part starts. A part is
'archiving' while written (its last path unknown until the tape has no room for the next file),
then 'archived' once read back and matched; the folder is archived when its last part is. A folder
archived whole to one tape has no parts.
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
        conn.execute('DELETE FROM parts WHERE folder = ? AND part = ? AND state = ?', (folder_id, number, ARCHIVING))


def forget(db: Database, folder_id: int) -> None:
    """A folder archived afresh (not resumed) starts without parts."""
    with db.transaction() as conn:
        conn.execute('DELETE FROM parts WHERE folder = ?', (folder_id,))


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
