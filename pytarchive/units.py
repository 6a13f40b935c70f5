"""Numbers as people read them: decimal byte units (as tape capacities are sold) and ages."""

import datetime as dt
from typing import Optional, Tuple

_UNITS = ('B', 'kB', 'MB', 'GB', 'TB', 'PB')


def human_bytes(count: Optional[int]) -> str:
    if count is None:
        return '-'
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1000 or unit == _UNITS[-1]:
            return f'{int(value)} {unit}' if unit == 'B' else f'{value:.1f} {unit}'
        value /= 1000
    raise AssertionError('unreachable')


def sizes_apart(before: Optional[int], after: Optional[int]) -> Tuple[str, str]:
    """Two sizes as people read them, unless that reads the same for sizes that differ: then both
    to the byte ('100,000 B' and '100,005 B'), so a message about a change shows the change."""
    first, second = human_bytes(before), human_bytes(after)
    if first == second and before != after and before is not None and after is not None:
        return f'{before:,} B', f'{after:,} B'
    return first, second


def age(since: str, now: Optional[dt.datetime] = None) -> str:
    """'42s', '5m', '3h', '12d' since an ISO timestamp."""
    now = now or dt.datetime.now(dt.timezone.utc)
    seconds = max(0, int((now - dt.datetime.fromisoformat(since)).total_seconds()))
    for size, unit in ((86400, 'd'), (3600, 'h'), (60, 'm')):
        if seconds >= size:
            return f'{seconds // size}{unit}'
    return f'{seconds}s'
