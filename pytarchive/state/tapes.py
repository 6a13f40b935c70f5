"""The tapes table: what the last scan saw and what format/check learned about each tape.

A tape's `slot` is its home slot (where it goes back when unloaded); NULL means the last scan did
not find it in the library. For a tape in a drive, the slot pytarchive loaded it from is kept: the
source slot mtx reports is the first empty slot whenever the true one is occupied. `state` is unknown (seen, never formatted or checked by pytarchive),
formatted (holds an LTFS volume) or cleaning (a CLN tape, never used for data).
"""

import datetime as dt
from typing import Any, Dict, List, Optional

from pytarchive.state.db import Database, now
from pytarchive.library.status import LibraryStatus

UNKNOWN, FORMATTED, CLEANING = 'unknown', 'formatted', 'cleaning'


def record_scan(db: Database, status: LibraryStatus) -> Dict[str, int]:
    """Make the table match the library: every barcoded tape with its home slot; absent ones get no slot."""
    seen_at = now()
    tapes = status.tapes()
    with db.transaction() as conn:
        loaded_from = {
            row['barcode']: row['slot']
            for row in conn.execute('SELECT barcode, slot FROM tapes WHERE slot IS NOT NULL')
            if any(tape.drive is not None and tape.barcode == row['barcode'] for tape in tapes)
        }
        conn.execute('UPDATE tapes SET slot = NULL')
        for tape in tapes:
            home = loaded_from.get(tape.barcode, tape.home_slot)
            conn.execute(
                'INSERT INTO tapes (barcode, slot, state, seen) VALUES (?, ?, ?, ?) '
                'ON CONFLICT (barcode) DO UPDATE SET slot = excluded.slot, seen = excluded.seen, '
                "state = CASE WHEN excluded.state = 'cleaning' THEN 'cleaning' ELSE tapes.state END",
                (tape.barcode, home, CLEANING if tape.cleaning else UNKNOWN, seen_at),
            )
    unlabelled = sum(1 for element in (*status.slots, *status.drives) if element.full and not element.barcode)
    return {'tapes': len(tapes), 'unlabelled': unlabelled, 'slots': len(status.slots)}


def _upsert(db: Database, barcode: str, slot: Optional[int], **columns: Any) -> None:
    names = ['slot', *columns]
    values = [slot, *columns.values()]
    with db.transaction() as conn:
        conn.execute(
            f'INSERT INTO tapes (barcode, {", ".join(names)}) VALUES (?, {", ".join("?" * len(names))}) '
            f'ON CONFLICT (barcode) DO UPDATE SET '
            + ', '.join(f'{name} = COALESCE(excluded.{name}, {name})' for name in names),
            (barcode, *values),
        )


def record_home(db: Database, barcode: str, slot: int) -> None:
    """The slot a tape is about to be loaded from: where it goes back, whatever mtx says later."""
    _upsert(db, barcode, slot)


def home_slot(db: Database, barcode: str) -> Optional[int]:
    rows = db.query('SELECT slot FROM tapes WHERE barcode = ?', (barcode,))
    return rows[0]['slot'] if rows else None


def record_full(db: Database, barcode: str) -> None:
    """The volume returned ENOSPC: LTFS never gives that space back, so the tape takes no more archives."""
    with db.transaction() as conn:
        conn.execute('UPDATE tapes SET full = 1 WHERE barcode = ?', (barcode,))


def is_full(db: Database, barcode: str) -> bool:
    return bool(db.query('SELECT 1 FROM tapes WHERE barcode = ? AND full', (barcode,)))


def record_formatted(db: Database, barcode: str, slot: Optional[int]) -> None:
    _upsert(db, barcode, slot, state=FORMATTED, checked=now())


def record_space(db: Database, barcode: str, slot: Optional[int], capacity: int, used: int) -> None:
    _upsert(db, barcode, slot, state=FORMATTED, capacity=capacity, used=used, checked=now())


def list_tapes(db: Database) -> List[Dict[str, Any]]:
    return [
        dict(row)
        for row in db.query(
            'SELECT barcode, slot, state, capacity, used, seen, checked, fixity_checked, fixity_result FROM tapes '
            'ORDER BY slot IS NULL, slot, barcode'
        )
    ]


def record_fixity(db: Database, barcode: str, result: str) -> None:
    with db.transaction() as conn:
        conn.execute(
            'UPDATE tapes SET fixity_checked = ?, fixity_result = ? WHERE barcode = ?', (now(), result, barcode)
        )


def fixity_due(db: Database, days: int) -> List[str]:
    """Tapes holding archives whose last fixity check is older than `days` (or never ran)."""
    since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).isoformat(timespec='seconds')
    return [
        row['barcode']
        for row in db.query(
            'SELECT t.barcode FROM tapes t WHERE (EXISTS (SELECT 1 FROM folders f WHERE f.tape = t.barcode '
            "AND f.state = 'archived') OR EXISTS (SELECT 1 FROM parts p WHERE p.tape = t.barcode "
            "AND p.state = 'archived')) AND (t.fixity_checked IS NULL OR t.fixity_checked < ?) ORDER BY t.barcode",
            (since,),
        )
    ]
