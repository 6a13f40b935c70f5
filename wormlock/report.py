"""`--report PATH`: every file under a tree with its lock state and retention expiry.

Qumulo has no built-in way to list locked files; this is the list an auditor asks for, and the
"drift" view (`--unlocked-only`) shows what should be locked and is not.

Matters (`--audit-log FILE`, `--matter NAME`): the cluster keeps a legal hold as one flag and no
word of why, so the matter a file is held for is read from the audit log the watcher wrote (and the
files logrotate rotated it into): a file's `matter` column lists each matter under which the log
records its legal hold set or found set (`locked` or `already-locked` with the hold on). A file
held by hand, or by a watcher whose log is not given, has none. The column is only there when an
audit log is given.

What the account may not read is shown, never left out: a file whose lock it may not read (no
READ_ACL on the file) and a directory it may not list (no READ on it) are rows whose `unreadable`
column holds the cluster's reason, and whose lock columns are empty (unknown). They are kept by
every filter, for a file whose lock is unknown may be unlocked or expiring.
"""

import collections
import concurrent.futures
import csv
import datetime as dt
import json
import os
import re
import threading
import zlib
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from qumulo.lib.request import RequestError

from common.auth import Client, distinct_pages
from common.errors import reading_reply
from .audit import open_audit_file
from .errors import BadOption
from .retention import parse_time
from .walk import DIRECTORY, FILE, PAGE_SIZE, refusal

COLUMNS = ('path', 'file_id', 'size', 'locked', 'legal_hold', 'retention_until', 'days_left', 'unreadable')
MATTER = 'matter'  # the columns an audit log adds
UNLOCKABLE = 'unlockable'
HELD = ('locked', 'already-locked')  # the results whose legal_hold is the file's hold as read back
LOCK_NOT_READ = 'lock not readable: '
NOT_LISTED = 'directory not listed: '
WINDOW = 512  # files whose lock is being read ahead of the row written: what bounds the memory


def lock_row(attrs: Mapping[str, Any], now: dt.datetime) -> Dict[str, Any]:
    lock = attrs.get('lock') or {}
    until = parse_time(lock['retention_period']) if lock.get('retention_period') else None
    retained = until is not None and until > now
    return {
        'path': attrs['path'],
        'file_id': attrs['id'],
        'size': int(attrs['size']),
        'locked': bool(lock.get('legal_hold')) or retained,
        'legal_hold': bool(lock.get('legal_hold')),
        'retention_until': lock.get('retention_period'),
        'days_left': round((until - now).total_seconds() / 86400, 1) if retained else None,
        'unreadable': None,
    }


def unreadable_row(path: str, file_id: str, size: Optional[Any], reason: str) -> Dict[str, Any]:
    """A file whose lock, or a directory whose entries, the account may not read."""
    return {
        'path': path,
        'file_id': file_id,
        'size': None if size is None else int(size),
        'locked': None,
        'legal_hold': None,
        'retention_until': None,
        'days_left': None,
        'unreadable': reason,
    }


def wanted(row: Mapping[str, Any], unlocked_only: bool = False, expiring_within: Optional[float] = None) -> bool:
    if row['unreadable']:
        return True  # its lock is unknown: it may be what the filter looks for
    if unlocked_only and row['locked']:
        return False
    if expiring_within is not None:
        # Expiring: a retention that ends within the window and no legal hold keeping the file.
        return row['days_left'] is not None and not row['legal_hold'] and row['days_left'] <= expiring_within
    return True


def collect(
    client: Client,
    directory_id: str,
    now: dt.datetime,
    workers: int = 8,
    unlocked_only: bool = False,
    expiring_within: Optional[float] = None,
    top_path: Optional[str] = None,
) -> List[Dict[str, Any]]:
    """Rows for every file under the directory, in path order (for the table, which must see
    every row to size its columns)."""
    found = rows(client, directory_id, now, workers, unlocked_only, expiring_within, top_path)
    return sorted(found, key=lambda r: r['path'])


def rows(
    client: Client,
    directory_id: str,
    now: dt.datetime,
    workers: int = 8,
    unlocked_only: bool = False,
    expiring_within: Optional[float] = None,
    top_path: Optional[str] = None,
) -> Iterator[Dict[str, Any]]:
    """Rows for every file under the directory as they are read, directory by directory in name
    order; lock states read in parallel, at most WINDOW files ahead, so a tree of any size is
    reported in constant memory. A directory that may not be listed and a file whose lock may
    not be read are rows marked unreadable; a file removed between the listing and the reading
    of its lock is left out."""
    local = threading.local()
    not_listed: List[Dict[str, Any]] = []

    def denied(dir_id: str, path: str, error: RequestError) -> None:
        not_listed.append(unreadable_row(path, dir_id, None, NOT_LISTED + refusal(error)))

    def read(listed: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
        if not hasattr(local, 'client'):
            local.client = client.clone()
        try:
            return lock_row(local.client.fs.get_file_attr(id_=listed['id'], retrieve_file_lock=True), now)
        except RequestError as e:
            if e.status_code == 404:
                return None  # removed since it was listed
            if e.status_code == 403:
                return unreadable_row(listed['path'], listed['id'], listed['size'], LOCK_NOT_READ + refusal(e))
            raise

    def done(future: 'concurrent.futures.Future[Optional[Dict[str, Any]]]') -> Iterator[Dict[str, Any]]:
        row = future.result()
        if row is not None and wanted(row, unlocked_only, expiring_within):
            yield row
        while not_listed:
            yield not_listed.pop(0)

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool, reading_reply("a file's attributes"):
        window: 'collections.deque[concurrent.futures.Future[Optional[Dict[str, Any]]]]' = collections.deque()
        for listed in walk_in_order(client, directory_id, top_path, denied):
            window.append(pool.submit(read, listed))
            if len(window) >= WINDOW:
                yield from done(window.popleft())
        while window:
            yield from done(window.popleft())
        yield from not_listed


def walk_in_order(
    client: Client,
    directory_id: str,
    path: Optional[str],
    on_denied: Callable[[str, str, RequestError], None],
    top: bool = True,
) -> Iterator[Dict[str, Any]]:
    """Every regular file under the directory, each directory's entries in name order with a
    subdirectory's files where its name falls: a report reads as a tree, one page of each open
    directory held at a time."""
    try:
        pages = client.fs.read_entire_directory(id_=directory_id, page_size=PAGE_SIZE)
        for page in distinct_pages(pages, 'a directory listing'):
            with reading_reply('a directory listing'):
                entries = [(e['type'], e['id'], e['path'], e) for e in page['files']]
            for kind, entry_id, entry_path, entry in entries:
                if kind == FILE:
                    yield entry
                elif kind == DIRECTORY:
                    yield from walk_in_order(client, entry_id, entry_path, on_denied, top=False)
    except RequestError as e:
        if e.status_code == 403:
            on_denied(directory_id, path or f'directory id {directory_id}', e)
        elif not (e.status_code == 404 and not top):  # gone since its parent was listed: holds nothing now
            raise


def audit_files(path: str) -> List[str]:
    """FILE and the files logrotate rotated it into beside it: FILE.1, FILE.2.gz, and with
    dateext FILE-20260101 or FILE-20260101.gz."""
    folder, name = os.path.split(os.path.abspath(path))
    rotated = re.compile(re.escape(name) + r'[.-]\d+(\.gz)?')
    try:
        siblings = sorted(n for n in os.listdir(folder) if rotated.fullmatch(n))
    except OSError as e:
        raise BadOption(f'--audit-log {path}: cannot list its folder: {e.strerror or e}') from None
    return [path] + [os.path.join(folder, n) for n in siblings]


def read_matters(path: str) -> Dict[str, List[str]]:
    """file id -> the matters the audit log FILE (and its rotated files) records its legal hold
    under, sorted. Lines that are not records are passed over: --verify-audit is what judges them."""
    return read_audit(path)[0]


def read_audit(path: str) -> Tuple[Dict[str, List[str]], Dict[str, str]]:
    """(file id -> matters, as read_matters; file id -> the cluster's reason for the last lock
    that failed, for the files whose last record is a failure: the files the watcher may not lock)."""
    matters = collections.defaultdict(set)
    latest: Dict[str, Tuple[str, Optional[str]]] = {}  # file id -> (time, failure reason or None)
    for name in audit_files(path):
        try:
            with open_audit_file(name) as f:
                for raw in f:
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(record, dict) and record.get('result') in HELD + ('failed',):
                        # The newest record of a file decides, by its time: rotated files are
                        # named in no order a sort could trust (FILE.1 is newer than FILE.2).
                        when, file_id = str(record.get('time', '')), record.get('file_id')
                        if isinstance(file_id, str) and when >= latest.get(file_id, ('', None))[0]:
                            failed = record['result'] == 'failed'
                            latest[file_id] = (when, str(record.get('error') or 'failed') if failed else None)
                    if (
                        isinstance(record, dict)
                        and record.get('result') in HELD
                        and record.get('legal_hold') is True
                        and isinstance(record.get('matter'), str)
                        and isinstance(record.get('file_id'), str)
                    ):
                        matters[record['file_id']].add(record['matter'])
        except OSError as e:
            raise BadOption(f'--audit-log {name}: cannot read it: {e.strerror or e}') from None
        except (EOFError, zlib.error) as e:
            raise BadOption(f'--audit-log {name}: cannot read it: damaged or cut short ({e})') from None
    failures = {file_id: reason for file_id, (_, reason) in latest.items() if reason is not None}
    return {file_id: sorted(names) for file_id, names in matters.items()}, failures


def add_matters(
    rows: Iterable[Dict[str, Any]], matters: Mapping[str, List[str]], matter: Optional[str] = None
) -> Iterator[Dict[str, Any]]:
    """The rows with their `matter` column; with `matter`, only the files held for it, and the
    directories that could not be listed (what they hold is not known)."""
    for row in rows:
        listed = not (row['unreadable'] or '').startswith(NOT_LISTED)
        row[MATTER] = matters.get(row['file_id'], []) if listed else None
        if matter is None or row[MATTER] is None or matter in row[MATTER]:
            yield row


def add_failures(rows: Iterable[Dict[str, Any]], failures: Mapping[str, str]) -> Iterator[Dict[str, Any]]:
    """The rows with their `unlockable` column: for a file not locked whose last audit record is a
    failed lock, the cluster's reason (e.g. the account lacks WRITE_ACL on it)."""
    for row in rows:
        row[UNLOCKABLE] = failures.get(row['file_id']) if row.get('locked') is False else None
        yield row


def columns_for(matters: bool) -> Sequence[str]:
    """The report's columns; with an audit log, `matter` and `unlockable` last."""
    return COLUMNS + (MATTER, UNLOCKABLE) if matters else COLUMNS


class Tally:
    """Counts the rows as they pass on to a writer: a streamed report sees each row once."""

    def __init__(self, rows: Iterable[Dict[str, Any]]):
        self._rows = rows
        self.n = dict(files=0, locked=0, not_locked=0, unreadable=0, not_listed=0, unlockable=0)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        for row in self._rows:
            self.add(row)
            yield row

    def add(self, row: Mapping[str, Any]) -> None:
        n = self.n
        if (row['unreadable'] or '').startswith(NOT_LISTED):
            n['not_listed'] += 1
            return
        n['files'] += 1
        key = 'unreadable' if row['unreadable'] else 'locked' if row['locked'] else 'not_locked'
        n[key] += 1
        n['unlockable'] += bool(row.get(UNLOCKABLE))


def counts(rows: Iterable[Dict[str, Any]]) -> Dict[str, int]:
    """files (readable or not), locked, not locked, unreadable files, directories not listed,
    files the watcher may not lock."""
    tally = Tally(rows)
    for _ in tally:
        pass
    return tally.n


def summary(rows: List[Dict[str, Any]]) -> str:
    return summary_of(counts(rows))


def summary_of(n: Mapping[str, int]) -> str:
    text = f'{n["files"]} files, {n["locked"]} locked, {n["not_locked"]} not locked'
    if n['unreadable']:
        text += f', {n["unreadable"]} unreadable'
    if n['unlockable']:
        text += f', {n["unlockable"]} the watcher may not lock'
    if n['not_listed']:
        text += f'; {n["not_listed"]} {"directory" if n["not_listed"] == 1 else "directories"} not listed'
    return text


def what_is_missing(rows: List[Dict[str, Any]]) -> Optional[str]:
    """What the report could not read (`1 file's lock could not be read and ...`); None: nothing."""
    return missing_of(counts(rows))


def missing_of(n: Mapping[str, int]) -> Optional[str]:
    parts = []
    if n['unreadable']:
        parts.append(
            f"{n['unreadable']} file's lock could not be read"
            if n['unreadable'] == 1
            else f"{n['unreadable']} files' locks could not be read"
        )
    if n['not_listed']:
        parts.append(f'{n["not_listed"]} {"directory" if n["not_listed"] == 1 else "directories"} could not be listed')
    return ' and '.join(parts) or None


def write_table(rows: List[Dict[str, Any]], out: IO[str], columns: Sequence[str] = COLUMNS) -> None:
    def shown(row: Mapping[str, Any], column: str) -> str:
        value = row[column]
        if value is None and row['unreadable'] and column in ('locked', 'legal_hold'):
            return '?'
        if isinstance(value, list):
            return ', '.join(value)
        return 'yes' if value is True else 'no' if value is False else '' if value is None else str(value)

    cells = [[shown(row, c) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    for line in [list(columns), ['-' * w for w in widths]] + cells:
        out.write('  '.join(v.ljust(w) for v, w in zip(line, widths)).rstrip() + '\n')
    out.write(summary(rows) + '\n')


def write_csv(rows: Iterable[Dict[str, Any]], out: IO[str], columns: Sequence[str] = COLUMNS) -> None:
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        # A file held for two matters: one cell, the names on lines of their own (the one
        # character a matter name cannot hold).
        writer.writerow({c: '\n'.join(row[c]) if isinstance(row[c], list) else row[c] for c in columns})


def write_json(rows: Iterable[Dict[str, Any]], out: IO[str], columns: Sequence[str] = COLUMNS) -> None:
    """One JSON document, written a row at a time (`complete` comes last: only then is it known)."""
    tally = Tally(rows)
    generated = dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    out.write('{\n  "generated": ' + json.dumps(generated) + ',\n  "files": [')
    for index, row in enumerate(tally):
        out.write((',' if index else '') + '\n    ' + json.dumps({c: row[c] for c in columns}))
    n = tally.n
    out.write('\n  ],\n  "complete": ' + json.dumps(not (n['unreadable'] or n['not_listed'])) + '\n}\n')
