"""wormlock.retention: what --retention asks for, counted on the calendar (no cluster)."""

import datetime as dt

import pytest

from wormlock.retention import Retention, RetentionError, add_months, parse_time

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    'text, expected',
    [
        ('7d', dt.datetime(2026, 2, 7, 12, 0, tzinfo=UTC)),
        ('1m', dt.datetime(2026, 2, 28, 12, 0, tzinfo=UTC)),  # no 31 February: the month's last day
        ('6m', dt.datetime(2026, 7, 31, 12, 0, tzinfo=UTC)),
        ('2y', dt.datetime(2028, 1, 31, 12, 0, tzinfo=UTC)),
        ('13M', dt.datetime(2027, 2, 28, 12, 0, tzinfo=UTC)),
        ('2031-12-31', dt.datetime(2031, 12, 31, tzinfo=UTC)),
        ('2031-12-31T10:00:00Z', dt.datetime(2031, 12, 31, 10, tzinfo=UTC)),
    ],
)
def test_retention_counts_on_the_calendar(text, expected):
    assert Retention.parse(text).target(NOW) == expected


def test_leap_day_plus_a_year_is_the_last_day_of_february():
    assert add_months(dt.datetime(2028, 2, 29, tzinfo=UTC), 12) == dt.datetime(2029, 2, 28, tzinfo=UTC)


@pytest.mark.parametrize('text', ['', '7', '0d', '-1d', '3w', 'soon', '2031-13-01', '31/12/2031'])
def test_bad_retention_is_refused_with_the_accepted_forms(text):
    with pytest.raises(RetentionError, match='7d, 6m, 2y'):
        Retention.parse(text)


def test_cluster_times_with_nanoseconds_parse():
    assert parse_time('2024-10-08T21:53:46.493886743Z') == dt.datetime(2024, 10, 8, 21, 53, 46, 493886, tzinfo=UTC)


def test_the_longest_retention_is_1000_years_and_still_computes():
    assert Retention.parse('1000y').target(NOW) == dt.datetime(3026, 1, 31, 12, 0, tzinfo=UTC)
    assert Retention.parse('365250d').target(NOW).year == 3026
    for text in ('1001y', '12001m', '365251d', '9999999999d'):
        with pytest.raises(RetentionError, match='at most 1000y'):
            Retention.parse(text)


def test_a_retention_date_in_the_past_is_refused():
    with pytest.raises(RetentionError, match=r'--retention 2026-01-01T00:00:00Z is in the past'):
        Retention.parse('2026-01-01').check_future(NOW)
    Retention.parse('2026-02-01').check_future(NOW)  # a later date, and any period, are fine
    Retention.parse('7d').check_future(NOW)
