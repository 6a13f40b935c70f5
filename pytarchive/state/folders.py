"""The folders table and its manifests: what prepare recorded and what archive proved is on tape.

A folder goes prepared -> archiving -> archived (every byte read back from tape and matched), or
failed (the reason in `error`; archive it again after fixing the cause). Only `archived` folders are
deleteable. Preparing a path again replaces its prepared or failed record; archived records stay,
one per archived copy, and restore uses the newest.
"""

import queue
import threading
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from common.errors import ToolError
from pytarchive.state.db import Database, now
from pytarchive.walk import Entry

PREPARED, ARCHIVING, ARCHIVED, FAILED = 'prepared', 'archiving', 'archived', 'failed'
_BATCH = 5000  # manifest rows per INSERT batch: bounded memory for folders of millions of files


class FolderNotFound(ToolError):
    pass


def start_prepare(db: Database, path: str, description: str) -> Tuple[int, List[int]]:
    """A new folder record in state 'preparing'; the older unarchived ones go.

    Returns its id and the ids of the records it replaced (whose scratch copies the caller deletes).
    """
    with db.transaction() as conn:
        replaced = [
            row[0]
            for row in conn.execute(
                'SELECT id FROM folders WHERE path = ? AND state IN (?, ?, ?, ?)',
                (path, PREPARED, ARCHIVING, FAILED, 'preparing'),
            )
        ]
        conn.execute(
            'DELETE FROM folders WHERE path = ? AND state IN (?, ?, ?, ?)',
            (path, PREPARED, ARCHIVING, FAILED, 'preparing'),
        )
        cursor = conn.execute(
            'INSERT INTO folders (path, description, state, created) VALUES (?, ?, ?, ?)',
            (path, description, 'preparing', now()),
        )
        return cursor.lastrowid, replaced


def recording(db: Database, folder_id: int, entries: Iterable[Entry]) -> Iterator[Entry]:
    """Pass the entries through, writing them to the manifest in batches as they go by.

    The writes happen on a thread of their own, so a commit waiting for the disk never holds up
    the walk (nor the tar that reads its names while prepare packs).
    """
    batches: queue.Queue = queue.Queue(maxsize=4)
    failures: List[BaseException] = []

    def write() -> None:
        while (rows := batches.get()) is not None:
            if not failures:
                try:
                    _insert(db, rows)
                except BaseException as exc:  # noqa: BLE001 - raised in the walking thread below
                    failures.append(exc)

    writer = threading.Thread(target=write, name='manifest-writer', daemon=True)
    writer.start()
    batch: List[Tuple] = []
    try:
        for entry in entries:
            batch.append((folder_id, *entry))  # the columns below are Entry's fields, in order
            if len(batch) >= _BATCH:
                batches.put(batch)
                batch = []
            yield entry
        batches.put(batch)
    finally:
        batches.put(None)
        writer.join()
    if failures:
        raise failures[0]


def _insert(db: Database, rows: Sequence[Tuple]) -> None:
    with db.transaction() as conn:
        conn.executemany(
            'INSERT INTO manifest (folder, path, kind, size, mtime, mode, uid, gid, target) '
            'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
            rows,
        )


def remove_entries(db: Database, folder_id: int, paths: Iterable[str]) -> None:
    with db.transaction() as conn:
        conn.executemany('DELETE FROM manifest WHERE folder = ? AND path = ?', ((folder_id, path) for path in paths))


def finish_prepare(db: Database, folder_id: int, packed: Optional[str], packed_bytes: Optional[int]) -> Dict[str, Any]:
    with db.transaction() as conn:
        files, size = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM manifest WHERE folder = ? AND kind = 'file'", (folder_id,)
        ).fetchone()
        conn.execute(
            'UPDATE folders SET state = ?, file_count = ?, source_bytes = ?, packed = ?, archived_bytes = ? '
            'WHERE id = ?',
            (PREPARED, files, size, packed, packed_bytes, folder_id),
        )
    return get(db, folder_id)


def get(db: Database, folder_id: int) -> Dict[str, Any]:
    rows = db.query('SELECT * FROM folders WHERE id = ?', (folder_id,))
    if not rows:
        raise FolderNotFound(f'folder record {folder_id} no longer exists (prepared again since?)')
    return dict(rows[0])


def latest(db: Database, path: str, states: Sequence[str]) -> Optional[Dict[str, Any]]:
    rows = db.query(
        f'SELECT * FROM folders WHERE path = ? AND state IN ({", ".join("?" * len(states))}) ORDER BY id DESC LIMIT 1',
        (path, *states),
    )
    return dict(rows[0]) if rows else None


def entries(db: Database, folder_id: int, under: str = '', kind: Optional[str] = None) -> Iterator[Dict[str, Any]]:
    """The manifest in path order (parents before their contents), read a page at a time.

    under: only that entry and what lies below it. kind: only files, dirs or links.
    """
    where, params = 'folder = ?', [folder_id]
    if under:
        # 'a/b' and everything from 'a/b/' up to (not including) 'a/b0': '0' follows '/' in byte order.
        where += ' AND (path = ? OR (path >= ? AND path < ?))'
        params += [under, under + '/', under + '0']
    if kind:
        where += ' AND kind = ?'
        params.append(kind)
    last = ''
    while True:
        rows = db.query(
            f'SELECT * FROM manifest WHERE {where} AND path > ? ORDER BY path LIMIT {_BATCH}', (*params, last)
        )
        for row in rows:
            yield dict(row)
        if len(rows) < _BATCH:
            return
        last = rows[-1]['path']


def record_checksums(db: Database, folder_id: int, checksums: Sequence[Tuple[str, str]]) -> None:
    with db.transaction() as conn:
        conn.executemany(
            'UPDATE manifest SET checksum = ? WHERE folder = ? AND path = ?',
            ((checksum, folder_id, path) for path, checksum in checksums),
        )


def start_archive(db: Database, folder_id: int, tape: str, tape_path: str, resuming: bool) -> None:
    """The folder is being copied to tape_path on tape. A fresh copy (not resuming) forgets the checksums
    of an earlier attempt: a resumed run skips files that have one, and those describe another copy."""
    with db.transaction() as conn:
        conn.execute(
            'UPDATE folders SET state = ?, tape = ?, tape_path = ?, error = NULL WHERE id = ?',
            (ARCHIVING, tape, tape_path, folder_id),
        )
        if not resuming:
            conn.execute('UPDATE folders SET packed_checksum = NULL WHERE id = ?', (folder_id,))
            conn.execute('UPDATE manifest SET checksum = NULL WHERE folder = ? AND checksum IS NOT NULL', (folder_id,))


def set_packed_checksum(db: Database, folder_id: int, checksum: str) -> None:
    with db.transaction() as conn:
        conn.execute('UPDATE folders SET packed_checksum = ? WHERE id = ?', (checksum, folder_id))


def mark_archived(db: Database, folder_id: int, archived_bytes: int) -> None:
    stamp = now()
    with db.transaction() as conn:
        conn.execute(
            'UPDATE folders SET state = ?, archived = ?, verified = ?, archived_bytes = ?, error = NULL WHERE id = ?',
            (ARCHIVED, stamp, stamp, archived_bytes, folder_id),
        )


def mark_failed(db: Database, folder_id: int, error: str) -> None:
    with db.transaction() as conn:
        conn.execute('UPDATE folders SET state = ?, error = ? WHERE id = ?', (FAILED, error, folder_id))


def deleteable(db: Database) -> List[Dict[str, Any]]:
    """Folders archived and verified: the newest archived copy of each path, oldest first; never
    one whose last fixity check found its copy on tape differing (pytarchive verify)."""
    return [
        dict(row)
        for row in db.query(
            'SELECT id, path, description, tape, tape_path, source_bytes, file_count, archived, verified, '
            'packed IS NOT NULL AS packed FROM folders f WHERE state = ? AND id = '
            '(SELECT MAX(id) FROM folders WHERE path = f.path AND state = ?) '
            "AND (fixity_result IS NULL OR fixity_result = 'ok') ORDER BY archived, path",
            (ARCHIVED, ARCHIVED),
        )
    ]


def archived_on(db: Database, barcode: str) -> List[Dict[str, Any]]:
    """The archived folders a tape holds, oldest first."""
    return [
        dict(row)
        for row in db.query('SELECT * FROM folders WHERE tape = ? AND state = ? ORDER BY id', (barcode, ARCHIVED))
    ]


def record_fixity(db: Database, folder_id: int, result: str) -> None:
    with db.transaction() as conn:
        conn.execute(
            'UPDATE folders SET fixity_checked = ?, fixity_result = ? WHERE id = ?', (now(), result, folder_id)
        )


def per_tape(db: Database) -> Dict[str, Dict[str, int]]:
    """For the summary: archived folders and their bytes on each tape."""
    return {
        row['tape']: {'folders': row['folders'], 'bytes': row['bytes']}
        for row in db.query(
            'SELECT tape, COUNT(*) AS folders, COALESCE(SUM(archived_bytes), 0) AS bytes FROM folders '
            'WHERE state = ? GROUP BY tape',
            (ARCHIVED,),
        )
    }


def record_imported(db: Database, folder: Dict[str, Any], rows: Iterable[Tuple]) -> int:
    """An archive read from a tape's description (pytarchive import): its folder record, archived, and
    its manifest rows (path, kind, size, mtime, mode, uid, gid, checksum, target), in one transaction,
    so an import cut short leaves whole archives only. -> the new record's id."""
    columns = ', '.join(folder)
    with db.transaction() as conn:
        cursor = conn.execute(
            f'INSERT INTO folders ({columns}, state) VALUES ({", ".join("?" * len(folder))}, ?)',
            (*folder.values(), ARCHIVED),
        )
        folder_id = cursor.lastrowid
        conn.executemany(
            'INSERT INTO manifest (folder, path, kind, size, mtime, mode, uid, gid, checksum, target) '
            'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
            ((folder_id, *row) for row in rows),
        )
    return folder_id
