"""Numbers as people read them: byte counts and ages."""

import datetime as dt

from pytarchive.units import age, human_bytes


def test_units():
    assert [human_bytes(n) for n in (None, 0, 999, 1000, 18_000_000_000_000)] == [
        '-',
        '0 B',
        '999 B',
        '1.0 kB',
        '18.0 TB',
    ]
    now = dt.datetime(2025, 1, 3, tzinfo=dt.timezone.utc)
    assert [
        age(t, now)
        for t in (
            '2025-01-03T00:00:00+00:00',
            '2025-01-02T23:59:00+00:00',
            '2025-01-02T21:00:00+00:00',
            '2025-01-01T00:00:00+00:00',
        )
    ] == ['0s', '1m', '3h', '2d']
