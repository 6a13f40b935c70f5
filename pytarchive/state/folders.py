"""The folders table and its manifests: what prepare recorded and what archive proved is on tape.

A folder goes prepared -> archiving -> archived (every byte read back from tape and matched), or
failed (the reason in `error`; archive it again after fixing the cause). Only `archived` folders are
deleteable. Preparing a path again replaces its prepared or failed record; archived records stay,
one per archived copy, and restore uses the newest.

A further copy of an archived folder (`pytarchive copy`) is a record of its own, with its own tape,
state, dates and fixity, that names the first record in `copy_of` and shares its manifest: the
copy holds the same bytes, checked against the same checksums. The first record and its copies are
the folder's family; `copy_number` counts from 1 for the first. Only first records are prepared,
replaced or looked up by path (`latest`); copies are reached through their first.
"""

import collections
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
                'SELECT id FROM folders WHERE path = ? AND state IN (?, ?, ?, ?) AND copy_of IS NULL',
                (path, PREPARED, ARCHIVING, FAILED, 'preparing'),
            )
        ]
        conn.execute(
            'DELETE FROM folders WHERE path = ? AND state IN (?, ?, ?, ?) AND copy_of IS NULL',
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
    """The newest first record (never a further copy) of the path in one of these states."""
    rows = db.query(
        f'SELECT * FROM folders WHERE path = ? AND state IN ({", ".join("?" * len(states))}) AND copy_of IS NULL '
        'ORDER BY id DESC LIMIT 1',
        (path, *states),
    )
    return dict(rows[0]) if rows else None


def manifest_of(folder: Dict[str, Any]) -> int:
    """The record whose manifest rows describe this one: a further copy shares its first record's."""
    return folder['copy_of'] or folder['id']


def family(db: Database, first_id: int, states: Sequence[str] = (ARCHIVED,)) -> List[Dict[str, Any]]:
    """A first record and its further copies in these states, by copy number."""
    return [
        dict(row)
        for row in db.query(
            f'SELECT * FROM folders WHERE (id = ? OR copy_of = ?) AND state IN ({", ".join("?" * len(states))}) '
            'ORDER BY copy_number, id',
            (first_id, first_id, *states),
        )
    ]


def start_copy(db: Database, first: Dict[str, Any], tape: str, packed: Optional[str]) -> Dict[str, Any]:
    """The record of a further copy of `first` on this tape: the unfinished one a run cut short or
    failed left (so a requeue resumes it), else a new one numbered after the family's highest.
    packed: where the copy's tar.zst is read from (a packed folder's copy is a tar.zst too)."""
    with db.transaction() as conn:
        row = conn.execute(
            'SELECT id FROM folders WHERE copy_of = ? AND tape = ? AND state IN (?, ?, ?) ORDER BY id DESC LIMIT 1',
            (first['id'], tape, PREPARED, ARCHIVING, FAILED),
        ).fetchone()
        if row is not None:
            conn.execute('UPDATE folders SET packed = ? WHERE id = ?', (packed, row[0]))
            copy_id = row[0]
        else:
            number = conn.execute(
                'SELECT MAX(copy_number) FROM folders WHERE id = ? OR copy_of = ?', (first['id'], first['id'])
            ).fetchone()[0]
            copy_id = conn.execute(
                'INSERT INTO folders (path, description, tape, state, source_bytes, file_count, created, packed, '
                'copy_of, copy_number) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                (
                    first['path'],
                    first['description'],
                    tape,
                    PREPARED,
                    first['source_bytes'],
                    first['file_count'],
                    first['created'],  # when the folder was prepared: a copy's description says the same
                    packed,
                    first['id'],
                    number + 1,
                ),
            ).lastrowid
    return get(db, copy_id)


def entries(
    db: Database,
    folder_id: int,
    under: str = '',
    kind: Optional[str] = None,
    first: str = '',
    last: Optional[str] = None,
) -> Iterator[Dict[str, Any]]:
    """The manifest in path order (parents before their contents), read a page at a time.

    under: only that entry and what lies below it. kind: only files, dirs or links. first, last:
    only the paths from first to last (a part of a folder archived across tapes).
    """
    where, params = 'folder = ? AND path >= ?', [folder_id, first]
    if last is not None:
        where += ' AND path <= ?'
        params.append(last)
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


# The sound copies of a family: archived, read back and matched, and not found differing by their
# last fixity check (pytarchive verify).
def _sound(alias: str) -> str:
    return f"{alias}.state = 'archived' AND ({alias}.fixity_result IS NULL OR {alias}.fixity_result = 'ok')"


def deleteable(db: Database, copies: int = 1) -> List[Dict[str, Any]]:
    """Folders whose newest archive has at least `copies` sound copies ([General] copies), oldest
    first, with how many it has and on which tapes (a folder archived across tapes: its parts'
    tapes joined by '+')."""
    spread = {
        row[0]: row[1]
        for row in db.query(
            "SELECT folder, group_concat(tape, '+') FROM (SELECT folder, tape FROM parts ORDER BY folder, part) "
            'GROUP BY folder'
        )
    }
    found = [
        dict(row)
        for row in db.query(
            'SELECT * FROM (SELECT id, path, description, tape, tape_path, source_bytes, file_count, archived, '
            'verified, packed IS NOT NULL AS packed, '
            f'(SELECT COUNT(*) FROM folders c WHERE (c.id = f.id OR c.copy_of = f.id) AND {_sound("c")}) AS copies, '
            f"(SELECT group_concat(tape, ', ') FROM (SELECT tape FROM folders c WHERE (c.id = f.id OR c.copy_of = f.id) "
            f'AND {_sound("c")} ORDER BY copy_number)) AS tapes '
            'FROM folders f WHERE state = ? AND copy_of IS NULL AND id = '
            '(SELECT MAX(id) FROM folders WHERE path = f.path AND state = ? AND copy_of IS NULL)) '
            'WHERE copies >= ? ORDER BY archived, path',
            (ARCHIVED, ARCHIVED, copies),
        )
    ]
    for row in found:
        row['tapes'] = spread.get(row['id'], row['tapes'])
    return found


def sound_copies(db: Database, first_id: int) -> List[Dict[str, Any]]:
    """A family's sound copies by copy number, each with its tape's home slot (None: not in the library)."""
    return [
        dict(row)
        for row in db.query(
            'SELECT f.*, t.slot AS slot FROM folders f LEFT JOIN tapes t ON t.barcode = f.tape '
            f'WHERE (f.id = ? OR f.copy_of = ?) AND {_sound("f")} ORDER BY f.copy_number',
            (first_id, first_id),
        )
    ]


def copy_to_read(db: Database, first: Dict[str, Any]) -> Dict[str, Any]:
    """The copy restore and explore read: the lowest-numbered sound copy whose tape the library
    holds, else any sound copy (the task then asks for its tape), else the first record itself."""
    sound = sound_copies(db, first['id'])
    in_library = [held for held in sound if held['slot'] is not None]
    return (in_library or sound or [first])[0]


def further_copies(db: Database) -> int:
    """How many further copies (beyond each folder's first) are archived."""
    return db.query("SELECT COUNT(*) FROM folders WHERE copy_of IS NOT NULL AND state = 'archived'")[0][0]


def short_of_copies(db: Database, copies: int) -> int:
    """How many folders' newest archives have fewer than `copies` sound copies (for the summary)."""
    return db.query(
        'SELECT COUNT(*) FROM folders f WHERE state = ? AND copy_of IS NULL AND id = '
        '(SELECT MAX(id) FROM folders WHERE path = f.path AND state = ? AND copy_of IS NULL) AND '
        f'(SELECT COUNT(*) FROM folders c WHERE (c.id = f.id OR c.copy_of = f.id) AND {_sound("c")}) < ?',
        (ARCHIVED, ARCHIVED, copies),
    )[0][0]


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
    """For the summary: archived folders and their bytes on each tape (a folder archived across
    tapes counts on each tape with the bytes of its part there)."""
    return {
        row['tape']: {'folders': row['folders'], 'bytes': row['bytes']}
        for row in db.query(
            'SELECT tape, COUNT(*) AS folders, COALESCE(SUM(bytes), 0) AS bytes FROM ('
            'SELECT tape, archived_bytes AS bytes FROM folders f WHERE state = ? '
            'AND NOT EXISTS (SELECT 1 FROM parts p WHERE p.folder = f.id) UNION ALL '
            'SELECT p.tape, p.archived_bytes FROM parts p JOIN folders f ON f.id = p.folder WHERE f.state = ?'
            ') GROUP BY tape',
            (ARCHIVED, ARCHIVED),
        )
    }


def record_imported(db: Database, folder: Dict[str, Any], rows: Iterable[Tuple]) -> int:
    """An archive read from a tape's description (pytarchive import): its folder record, archived, and
    its manifest rows (path, kind, size, mtime, mode, uid, gid, checksum, target), in one transaction,
    so an import cut short leaves whole archives only. An archive of the same preparation (same
    path and prepared date) already in the catalog makes this one a further copy of it, sharing its
    manifest (the rows are still read through: their checksum and counts are checked). -> the new
    record's id."""
    with db.transaction() as conn:
        family = conn.execute(
            'SELECT id, copy_of FROM folders WHERE path = ? AND created = ? AND state = ? '
            'AND id NOT IN (SELECT folder FROM parts) ORDER BY id LIMIT 1',
            (folder['path'], folder['created'], ARCHIVED),
        ).fetchone()
        if family is not None:
            folder = {**folder, 'copy_of': family[1] or family[0]}
        columns = ', '.join(folder)
        cursor = conn.execute(
            f'INSERT INTO folders ({columns}, state) VALUES ({", ".join("?" * len(folder))}, ?)',
            (*folder.values(), ARCHIVED),
        )
        folder_id = cursor.lastrowid
        if family is not None:
            collections.deque(rows, maxlen=0)
        else:
            conn.executemany(
                'INSERT INTO manifest (folder, path, kind, size, mtime, mode, uid, gid, checksum, target) '
                'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                ((folder_id, *row) for row in rows),
            )
    return folder_id
