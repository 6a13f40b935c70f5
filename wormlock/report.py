"""`--report PATH`: every file under a tree with its lock state and retention expiry.

Qumulo has no built-in way to list locked files; this is the list an auditor asks for, and the
"drift" view (`--unlocked-only`) shows what should be locked and is not.
"""

import concurrent.futures
import csv
import datetime as dt
import json
import threading
from typing import IO, Any, Dict, List, Mapping, Optional

from common.auth import Client
from common.errors import reading_reply
from .retention import parse_time
from .walk import walk_files

COLUMNS = ('path', 'file_id', 'size', 'locked', 'legal_hold', 'retention_until', 'days_left')


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
    }


def wanted(row: Mapping[str, Any], unlocked_only: bool = False, expiring_within: Optional[float] = None) -> bool:
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
) -> List[Dict[str, Any]]:
    """Rows for every file under the directory, in path order; lock states read in parallel."""
    local = threading.local()

    def read(file_id: str) -> Dict[str, Any]:
        if not hasattr(local, 'client'):
            local.client = client.clone()
        return local.client.fs.get_file_attr(id_=file_id, retrieve_file_lock=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool, reading_reply("a file's attributes"):
        ids = [attrs['id'] for attrs in walk_files(client, directory_id, recursive=True)]
        rows = [lock_row(attrs, now) for attrs in pool.map(read, ids)]
    rows = [r for r in rows if wanted(r, unlocked_only, expiring_within)]
    return sorted(rows, key=lambda r: r['path'])


def write_table(rows: List[Dict[str, Any]], out: IO[str]) -> None:
    shown = [
        ['yes' if v is True else 'no' if v is False else '' if v is None else str(v) for v in (row[c] for c in COLUMNS)]
        for row in rows
    ]
    widths = [max([len(c)] + [len(r[i]) for r in shown]) for i, c in enumerate(COLUMNS)]
    for line in [list(COLUMNS), ['-' * w for w in widths]] + shown:
        out.write('  '.join(v.ljust(w) for v, w in zip(line, widths)).rstrip() + '\n')
    locked = sum(1 for r in rows if r['locked'])
    out.write(f'{len(rows)} files, {locked} locked, {len(rows) - locked} not locked\n')


def write_csv(rows: List[Dict[str, Any]], out: IO[str]) -> None:
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)


def write_json(rows: List[Dict[str, Any]], out: IO[str]) -> None:
    json.dump(
        {'generated': dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'), 'files': rows}, out, indent=2
    )
    out.write('\n')
