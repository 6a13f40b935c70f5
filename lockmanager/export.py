"""Rows as people read them (an aligned table) and as scripts read them (CSV, JSON)."""

import csv
import datetime as dt
import json
from typing import IO, Dict, List, Optional, Sequence, Union

from lockmanager.closing import CloseOutcome
from lockmanager.model import COLUMNS, SESSION_COLUMNS, Column, HandleRow, SessionRow

# Columns a script wants beyond what the table shows: the ids needed to act on a row.
CSV_HEADER = [column.key for column in COLUMNS] + ['auth_id', 'location']
SESSION_CSV_HEADER = [column.key for column in SESSION_COLUMNS] + ['auth_id', 'location']


def _iso(moment: Optional[float]) -> Optional[str]:
    return dt.datetime.fromtimestamp(moment, dt.timezone.utc).isoformat(timespec='seconds') if moment else None


def row_record(row: Union[HandleRow, SessionRow]) -> Dict[str, object]:
    if isinstance(row, SessionRow):
        return session_record(row)
    return {
        'path': row.path,
        'file_id': row.file_id,
        'share': row.share,
        'user': row.user,
        'auth_id': row.auth_id,
        'client': row.client,
        'host': row.host,
        'access': row.access,
        'share_modes': list(row.share_modes),
        'byte_range_locks': row.byte_range_locks,
        'byte_range_modes': list(row.byte_range_modes),
        'opened': _iso(row.opened),
        'idle_s': round(row.idle_s, 1) if row.idle_s is not None else None,
        'location': row.location,
    }


def session_record(row: SessionRow) -> Dict[str, object]:
    return {
        'user': row.user,
        'auth_id': row.auth_id,
        'client': row.client,
        'host': row.host,
        'shares': list(row.shares),
        'open_handles': row.open_handles,
        'opened': _iso(row.opened),
        'idle_s': round(row.idle_s, 1) if row.idle_s is not None else None,
        'guest': row.guest,
        'encrypted': row.encrypted,
        'location': row.location,
    }


def write_csv(rows: Sequence[Union[HandleRow, SessionRow]], stream: IO[str], sessions: bool = False) -> None:
    writer = csv.writer(stream, lineterminator='\n')
    writer.writerow(SESSION_CSV_HEADER if sessions else CSV_HEADER)
    for row in rows:
        writer.writerow([*row.cells, row.auth_id, row.location])


def save_csv(rows: Sequence[HandleRow], path: str) -> None:
    # newline='' as the csv module asks, so a path with a line break stays one quoted field.
    with open(path, 'w', encoding='utf-8', newline='') as stream:
        write_csv(rows, stream)


def write_json(rows: Sequence[Union[HandleRow, SessionRow]], stream: IO[str]) -> None:
    json.dump([row_record(row) for row in rows], stream, indent=2)
    stream.write('\n')


def write_outcomes_json(outcomes: Sequence[CloseOutcome], stream: IO[str]) -> None:
    records = [dict(row_record(o.row), closed=o.closed, error=o.problem) for o in outcomes]
    json.dump(records, stream, indent=2)
    stream.write('\n')


def table_lines(rows: Sequence[Union[HandleRow, SessionRow]], columns: Sequence[Column] = COLUMNS) -> List[str]:
    """Aligned columns under a heading line; the last column is not padded."""
    grid = [[column.heading for column in columns]] + [list(row.cells) for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns) - 1)]
    return ['  '.join([*(text.ljust(width) for text, width in zip(line, widths)), line[-1]]).rstrip() for line in grid]
