"""Rows as people read them (an aligned table) and as scripts read them (CSV, JSON)."""

import csv
import json
from typing import IO, Dict, List, Sequence

from lockmanager.closing import CloseOutcome
from lockmanager.model import COLUMNS, HandleRow

# Columns a script wants beyond what the table shows: the ids needed to act on a row.
CSV_HEADER = [column.key for column in COLUMNS] + ['auth_id', 'location']


def row_record(row: HandleRow) -> Dict[str, object]:
    return {
        'path': row.path,
        'file_id': row.file_id,
        'user': row.user,
        'auth_id': row.auth_id,
        'clients': list(row.clients),
        'access': row.access,
        'share_modes': list(row.share_modes),
        'byte_range_locks': row.byte_range_locks,
        'byte_range_modes': list(row.byte_range_modes),
        'location': row.location,
    }


def write_csv(rows: Sequence[HandleRow], stream: IO[str]) -> None:
    writer = csv.writer(stream, lineterminator='\n')
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow([*row.cells, row.auth_id, row.location])


def save_csv(rows: Sequence[HandleRow], path: str) -> None:
    # newline='' as the csv module asks, so a path with a line break stays one quoted field.
    with open(path, 'w', encoding='utf-8', newline='') as stream:
        write_csv(rows, stream)


def write_json(rows: Sequence[HandleRow], stream: IO[str]) -> None:
    json.dump([row_record(row) for row in rows], stream, indent=2)
    stream.write('\n')


def write_outcomes_json(outcomes: Sequence[CloseOutcome], stream: IO[str]) -> None:
    records = [dict(row_record(o.row), closed=o.closed, error=o.problem) for o in outcomes]
    json.dump(records, stream, indent=2)
    stream.write('\n')


def table_lines(rows: Sequence[HandleRow]) -> List[str]:
    """Aligned columns under a heading line; the last column is not padded."""
    grid = [[column.heading for column in COLUMNS]] + [list(row.cells) for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(COLUMNS) - 1)]
    return ['  '.join([*(text.ljust(width) for text, width in zip(line, widths)), line[-1]]).rstrip() for line in grid]
