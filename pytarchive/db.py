"""The service's state in one SQLite file: tapes, archived folders, their manifests, the task queue.

WAL mode (readers never wait for the writer), foreign keys on, and `PRAGMA user_version` as the
schema version: MIGRATIONS[n] turns version n into n+1, each in one transaction, so a database
from an older pytarchive is upgraded in place and one from a newer pytarchive is refused.

One connection, shared by the service's threads behind a lock: the load is a few statements per
task step, and a single writer makes every state change one plain transaction.
"""

import contextlib
import datetime as dt
import os
import sqlite3
import threading
from typing import Iterator, List, Sequence

from common.errors import ToolError

MIGRATIONS: List[Sequence[str]] = [
    # 0 -> 1: the part-1 schema.
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
    # 1 -> 2: part 2 (prepare, archive, restore): what a manifest row needs to rebuild the entry,
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
]
SCHEMA_VERSION = len(MIGRATIONS)


def now() -> str:
    """UTC time as stored in every date column: ISO 8601, seconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')


class DatabaseError(ToolError):
    pass


class Database:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.RLock()
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, mode=0o700, exist_ok=True)
            # isolation_level=None: no implicit transactions; transaction() says where they are.
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute('PRAGMA journal_mode = WAL')
            self._conn.execute('PRAGMA foreign_keys = ON')
            self._conn.execute('PRAGMA synchronous = FULL')  # a task marked done stays done after a power cut
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f'{path}: cannot open the database: {exc}') from None
        except OSError as exc:
            raise DatabaseError(f'{path}: cannot open the database: {exc.strerror}') from None

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

    @property
    def version(self) -> int:
        with self._lock:
            return self._conn.execute('PRAGMA user_version').fetchone()[0]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic state change: committed when the block ends, rolled back if it raises."""
        with self._lock:
            self._conn.execute('BEGIN IMMEDIATE')
            try:
                yield self._conn
            except BaseException:
                self._conn.execute('ROLLBACK')
                raise
            self._conn.execute('COMMIT')

    def query(self, sql: str, params: Sequence = ()) -> List[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
