"""The service's state in one SQLite file: tapes, archived folders, their manifests, the task queue.

WAL mode (readers never wait for the writer), foreign keys on, and `PRAGMA user_version` as the
schema version: MIGRATIONS[n] turns version n into n+1, each in one transaction, so a database
from an older pytarchive is upgraded in place and one from a newer pytarchive is refused.

One connection, shared by the service's threads behind a lock: the load is a few statements per
task step, and a single writer makes every state change one plain transaction.
"""

import contextlib
import datetime as dt
import glob
import os
import sqlite3
import threading
from typing import Iterator, List, Optional, Sequence

from common.errors import ToolError

MIGRATIONS: List[Sequence[str]] = [
    # 0 -> 1: tapes, folders, their manifests and the task queue.
    (
        """CREATE TABLE tapes (
            barcode TEXT PRIMARY KEY,
            slot INTEGER,                          -- home slot; NULL when not in the library
            capacity INTEGER,                      -- bytes, from the last check
            used INTEGER,                          -- bytes, from the last check
            state TEXT NOT NULL DEFAULT 'unknown', -- unknown | formatted | cleaning
            seen TEXT,                             -- last scan that found it
            checked TEXT                           -- last format or check
        )""",
        """CREATE TABLE folders (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            tape TEXT REFERENCES tapes(barcode),
            state TEXT NOT NULL,
            source_bytes INTEGER,
            archived_bytes INTEGER,
            file_count INTEGER,
            created TEXT NOT NULL,
            archived TEXT,
            verified TEXT
        )""",
        'CREATE INDEX folders_by_path ON folders(path)',
        """CREATE TABLE manifest (
            folder INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path TEXT NOT NULL,                    -- relative to the folder
            size INTEGER NOT NULL,
            mtime REAL NOT NULL,
            checksum TEXT,
            PRIMARY KEY (folder, path)
        ) WITHOUT ROWID""",
        # AUTOINCREMENT: an id is never reused, so ids stay stable across restarts and deletions.
        """CREATE TABLE tasks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            args TEXT NOT NULL,                    -- JSON object
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'interrupted')),
            error TEXT,
            result TEXT,
            bytes_done INTEGER NOT NULL DEFAULT 0,
            bytes_total INTEGER,
            files_done INTEGER NOT NULL DEFAULT 0,
            files_total INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            started TEXT,
            finished TEXT
        )""",
        'CREATE INDEX tasks_by_state ON tasks(state, id)',
    ),
    # 1 -> 2: what a manifest row needs to rebuild the entry (prepare, archive, restore),
    # and where a folder's copy lives (packed archive in scratch_path, path on the tape).
    (
        "ALTER TABLE manifest ADD COLUMN kind TEXT NOT NULL DEFAULT 'file'",  # file | dir | link
        'ALTER TABLE manifest ADD COLUMN mode INTEGER',
        'ALTER TABLE manifest ADD COLUMN uid INTEGER',
        'ALTER TABLE manifest ADD COLUMN gid INTEGER',
        'ALTER TABLE manifest ADD COLUMN target TEXT',  # a link's target, as read (never followed)
        'ALTER TABLE folders ADD COLUMN packed TEXT',  # the tar.zst in scratch_path; NULL: files as they are
        'ALTER TABLE folders ADD COLUMN packed_checksum TEXT',  # of that tar.zst
        'ALTER TABLE folders ADD COLUMN tape_path TEXT',  # relative to the tape's root
        'ALTER TABLE folders ADD COLUMN error TEXT',  # why the last archive failed
        'ALTER TABLE tasks ADD COLUMN step TEXT',  # what a long task is doing now: copying, verifying...
    ),
    # 2 -> 3: a tape that returned ENOSPC (LTFS never gives that space back).
    ('ALTER TABLE tapes ADD COLUMN full INTEGER NOT NULL DEFAULT 0',),
    # 3 -> 4: a task can be cancelled (`pytarchive cancel`). SQLite cannot change a CHECK, so the
    # table is copied into one that allows the new state, keeping every row, id and the id sequence
    # (ids are never reused).
    (
        """CREATE TABLE tasks_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            args TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'interrupted', 'cancelled')),
            error TEXT,
            result TEXT,
            bytes_done INTEGER NOT NULL DEFAULT 0,
            bytes_total INTEGER,
            files_done INTEGER NOT NULL DEFAULT 0,
            files_total INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            started TEXT,
            finished TEXT,
            step TEXT
        )""",
        'INSERT INTO tasks_new (id, kind, args, state, error, result, bytes_done, bytes_total, files_done, '
        'files_total, attempts, created, started, finished, step) SELECT id, kind, args, state, error, result, '
        'bytes_done, bytes_total, files_done, files_total, attempts, created, started, finished, step FROM tasks',
        "DELETE FROM sqlite_sequence WHERE name = 'tasks_new'",
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'tasks_new', seq FROM sqlite_sequence WHERE name = 'tasks'",
        'DROP TABLE tasks',
        'ALTER TABLE tasks_new RENAME TO tasks',
        'CREATE INDEX tasks_by_state ON tasks(state, id)',
    ),
    # 4 -> 5: `pytarchive find` scans the paths alone (the index holds path and folder), not the
    # manifest's wide rows: ten million paths in well under a second.
    ('CREATE INDEX manifest_by_path ON manifest(path)',),
    # 5 -> 6: fixity (`pytarchive verify`): when each tape and each archive was last re-read against
    # its checksums, and how that went ('ok', or what differed).
    (
        'ALTER TABLE tapes ADD COLUMN fixity_checked TEXT',
        'ALTER TABLE tapes ADD COLUMN fixity_result TEXT',
        'ALTER TABLE folders ADD COLUMN fixity_checked TEXT',
        'ALTER TABLE folders ADD COLUMN fixity_result TEXT',
    ),
    # 6 -> 7: several drives and second copies. Which drive runs (or ran) a task; a further copy of
    # an archived folder is a folder record of its own (its own tape, state, dates, fixity) that
    # shares the manifest of the first record (copy_of), numbered from 1 for the first.
    (
        'ALTER TABLE tasks ADD COLUMN drive INTEGER',
        'ALTER TABLE folders ADD COLUMN copy_of INTEGER REFERENCES folders(id)',
        'ALTER TABLE folders ADD COLUMN copy_number INTEGER NOT NULL DEFAULT 1',
    ),
    # 7 -> 8: a folder larger than a tape (`archive PATH TAPE1,TAPE2,...`) is archived in parts, one
    # per tape, each the manifest rows of a range of paths (in path order), read back on its own tape.
    # A folder archived whole to one tape has no parts; a spanned one names its first part's tape.
    (
        """CREATE TABLE parts (
            folder INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            part INTEGER NOT NULL,                 -- 1, 2, ... in the order written
            tape TEXT NOT NULL,
            tape_path TEXT NOT NULL,
            first_path TEXT NOT NULL,              -- the manifest rows from this path...
            last_path TEXT,                        -- ...to this one; NULL while the part is written
            state TEXT NOT NULL,                   -- archiving | archived
            archived_bytes INTEGER,
            archived TEXT,
            fixity_checked TEXT,
            fixity_result TEXT,
            PRIMARY KEY (folder, part)
        ) WITHOUT ROWID""",
        'CREATE INDEX parts_by_tape ON parts(tape)',
    ),
    # 8 -> 9: a single file larger than what a whole tape takes is cut into pieces, one per part,
    # each kept on its tape as a file of its own with its own checksum.
    (
        """CREATE TABLE pieces (
            folder INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path TEXT NOT NULL,                    -- the manifest path of the file cut
            start INTEGER NOT NULL,                -- the piece's first byte in the file
            size INTEGER NOT NULL,
            part INTEGER NOT NULL,
            checksum TEXT NOT NULL,                -- BLAKE3 of the piece's bytes
            PRIMARY KEY (folder, path, start)
        ) WITHOUT ROWID""",
    ),
    # 9 -> 10: which part is a folder's last, so that `pytarchive import`, reading the parts from
    # their tapes in any order, knows when it has them all.
    ('ALTER TABLE parts ADD COLUMN last INTEGER NOT NULL DEFAULT 0',),
]
SCHEMA_VERSION = len(MIGRATIONS)


def now() -> str:
    """UTC time as stored in every date column: ISO 8601, seconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')


class DatabaseError(ToolError):
    pass


class DatabaseUnusable(DatabaseError):
    """The file is gone, replaced, corrupt or missing from a state directory that was in use: nothing
    can be trusted or recorded, so the service takes no work. The message is the whole line to show."""


SQLITE_HEADER = b'SQLite format 3\x00'
# Result codes that say the file is not (or no longer) the database: corrupt pages, not a database
# at all, or (SQLite's own check on a write) the file was unlinked or renamed under the connection.
_UNUSABLE_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_DBMOVED = 1032  # SQLITE_READONLY_DBMOVED
_RESTORE = 'restore it from the backup of its state directory (see README: State)'


def traces(path: str) -> List[str]:
    """Files an earlier database at `path` leaves next to it: its service lock, WAL, shared memory, rescued copies."""
    return sorted(glob.glob(glob.escape(path) + '[.-]*'))


class Database:
    def __init__(self, path: str, create: bool = True):
        """create=False: a missing (or empty) file is DatabaseUnusable rather than a new, empty catalog."""
        self.path = path
        self.problem: Optional[str] = None  # set once the database is unusable: every use then raises it
        self._lock = threading.RLock()
        parent = os.path.dirname(os.path.abspath(path))
        try:
            existed = os.path.exists(path) and os.path.getsize(path) > 0  # SQLite writes a header at once
            if not existed and not create:
                found = ', '.join(os.path.basename(name) for name in traces(path)) or 'files of an earlier one'
                raise DatabaseUnusable(
                    f'the database {path} is missing, but its directory still holds {found}, so it was in use: '
                    f'{_RESTORE}, or start the service once with --new-database to begin with an empty catalog'
                )
            os.makedirs(parent, mode=0o700, exist_ok=True)
            # isolation_level=None: no implicit transactions; transaction() says where they are.
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.row_factory = sqlite3.Row
            info = os.stat(path)  # sqlite3.connect has opened (or created) it
            self._identity = (info.st_dev, info.st_ino)  # the file this connection has open
            if existed:
                self._quick_check()
            self._conn.execute('PRAGMA journal_mode = WAL')
            self._conn.execute('PRAGMA foreign_keys = ON')
            self._conn.execute('PRAGMA synchronous = FULL')  # a task marked done stays done after a power cut
            self._migrate()
        except sqlite3.DatabaseError as exc:
            if _unusable(exc):
                raise DatabaseUnusable(f'the database {path} is corrupt ({exc}): {_RESTORE}') from None
            raise DatabaseError(f'{path}: cannot open the database: {exc}') from None
        except OSError as exc:
            raise DatabaseError(f'{path}: cannot open the database: {exc.strerror}') from None

    def _quick_check(self) -> None:
        """Corruption found now rather than by the first command that reads a bad page. quick_check
        reads every page once (seconds for a large catalog, at start only)."""
        found = [row[0] for row in self._conn.execute('PRAGMA quick_check(3)')]
        if found != ['ok']:
            raise DatabaseUnusable(f'the database {self.path} is corrupt (quick_check: {"; ".join(found)}): {_RESTORE}')

    def _migrate(self) -> None:
        version = self._conn.execute('PRAGMA user_version').fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f'{self.path}: database schema version {version} is newer than this pytarchive '
                f'understands ({SCHEMA_VERSION}); upgrade pytarchive'
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction() as conn:
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute(f'PRAGMA user_version = {target}')

    # -- is it still the database? -----------------------------------------------------------------

    def check(self, header: bool = False) -> None:
        """Raise DatabaseUnusable if the file was deleted or replaced since it was opened (or, with
        header, no longer starts as a database does). Cheap: a stat (and a 16-byte read)."""
        with self._lock:
            if self.problem is None:
                self.problem = self._look(header)
            if self.problem is not None:
                raise DatabaseUnusable(self.problem)

    def _look(self, header: bool) -> Optional[str]:
        try:
            info = os.stat(self.path)
            if header:
                with open(self.path, 'rb') as file:
                    start = file.read(len(SQLITE_HEADER))
        except FileNotFoundError:
            return self._rescue('was deleted while the service ran')
        except OSError as exc:
            return f'the database {self.path} cannot be read ({exc.strerror}); taking no work until it can'
        if (info.st_dev, info.st_ino) != self._identity:
            return self._rescue('was replaced by another file while the service ran')
        if header and start != SQLITE_HEADER:
            return f'the database {self.path} is corrupt (its header was overwritten): {_RESTORE}'
        return None

    def _rescue(self, what: str) -> str:
        """The connection still reads the file it opened: copy the catalog out as it is now, so nothing is lost."""
        stamp = dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
        copy = f'{self.path}.rescued-{stamp}'
        try:
            os.makedirs(os.path.dirname(os.path.abspath(copy)), mode=0o700, exist_ok=True)
            target = sqlite3.connect(copy)
            try:
                self._conn.backup(target)
            finally:
                target.close()
        except (sqlite3.Error, OSError) as exc:
            return f'the database {self.path} {what}, and it could not be saved ({exc}): {_RESTORE}'
        return (
            f'the database {self.path} {what}; the catalog as the service had it is saved in {copy}: '
            f'stop the service, move that file to {self.path} and start it again'
        )

    def _failed(self, exc: sqlite3.DatabaseError) -> None:
        """Called on a failed statement: if it says the file is unusable, raise that instead."""
        if not _unusable(exc):
            return
        if exc.sqlite_errorcode == _DBMOVED:
            self.check()  # deleted or replaced: rescued and raised there
        self.problem = self.problem or f'the database {self.path} is corrupt ({exc}): {_RESTORE}'
        raise DatabaseUnusable(self.problem) from None

    # -- use ---------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The open file's schema version. Read by the tests of the migrations, and handy in a shell;
        the service itself only needs _migrate()."""
        with self._lock:
            return self._conn.execute('PRAGMA user_version').fetchone()[0]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic state change: committed when the block ends, rolled back if it raises.
        Refused (DatabaseUnusable) once the file is not the one opened: a write there would be lost."""
        with self._lock:
            self.check()
            try:
                self._conn.execute('BEGIN IMMEDIATE')
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute('ROLLBACK')
                    raise
                self._conn.execute('COMMIT')
            except sqlite3.DatabaseError as exc:
                self._failed(exc)
                raise

    def query(self, sql: str, params: Sequence = ()) -> List[sqlite3.Row]:
        with self._lock:
            self.check()
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                self._failed(exc)
                raise

    def backup_to(self, path: str) -> None:
        """A consistent copy of the whole catalog in a new file at path (SQLite's online backup)."""
        with self._lock:
            self.check()
            target = sqlite3.connect(path)
            try:
                self._conn.backup(target)
            finally:
                target.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _unusable(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, 'sqlite_errorcode', None)
    return code == _DBMOVED or (code is not None and code & 0xFF in _UNUSABLE_CODES)
