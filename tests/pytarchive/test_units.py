"""Numbers as people read them: byte counts and ages."""

import datetime as dt

import pytest

from pytarchive.units import age, human_bytes, sizes_apart


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


@pytest.mark.parametrize(
    'before, after, shown',
    [
        (100_000, 100_005, ('100,000 B', '100,005 B')),  # the same to one decimal: shown to the byte
        (100_000, 250_000, ('100.0 kB', '250.0 kB')),
        (5, 7, ('5 B', '7 B')),
        (1_000, 1_000, ('1.0 kB', '1.0 kB')),
    ],
)
def test_sizes_that_differ_are_shown_so_that_they_differ(before, after, shown):
    assert sizes_apart(before, after) == shown
