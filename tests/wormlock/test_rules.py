"""The rules of qfs_filelock that need no cluster: retention arithmetic, never weakening a lock,
and the per-file schedule."""

import datetime as dt
import threading
import time

import pytest

from wormlock.locker import Outcome, Policy, changes_needed
from wormlock.retention import Retention, RetentionError, add_months, parse_time
from wormlock.schedule import Schedule
from wormlock.watcher import WatchOptions, Watcher, parse_event

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize('text, expected', [
    ('7d', dt.datetime(2026, 2, 7, 12, 0, tzinfo=UTC)),
    ('1m', dt.datetime(2026, 2, 28, 12, 0, tzinfo=UTC)),   # no 31 February: the month's last day
    ('6m', dt.datetime(2026, 7, 31, 12, 0, tzinfo=UTC)),
    ('2y', dt.datetime(2028, 1, 31, 12, 0, tzinfo=UTC)),
    ('13M', dt.datetime(2027, 2, 28, 12, 0, tzinfo=UTC)),
    ('2031-12-31', dt.datetime(2031, 12, 31, tzinfo=UTC)),
    ('2031-12-31T10:00:00Z', dt.datetime(2031, 12, 31, 10, tzinfo=UTC)),
])
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


def lock(retention=None, legal_hold=False):
    return {'retention_period': retention, 'legal_hold': legal_hold}


def test_an_unlocked_file_gets_exactly_the_fields_asked_for():
    both = Policy(Retention.parse('7d'), legal_hold=True)
    assert changes_needed(both, lock(), NOW, NOW) == {'retention_period': '2026-02-07T12:00:00Z', 'legal_hold': True}
    assert changes_needed(Policy(None, legal_hold=True), lock(), NOW, NOW) == {'legal_hold': True}


def test_repeated_events_do_not_push_the_date():
    policy = Policy(Retention.parse('7d'))
    locked_at = NOW
    current = lock('2026-02-07T12:00:00Z')
    for hours_later in (1, 24, 24 * 30):
        assert changes_needed(policy, current, locked_at, NOW + dt.timedelta(hours=hours_later)) == {}


def test_a_longer_policy_extends_but_a_shorter_one_never_shortens():
    current = lock('2026-02-07T12:00:00Z')
    longer = changes_needed(Policy(Retention.parse('1y')), current, NOW, NOW)
    assert longer == {'retention_period': '2027-01-31T12:00:00Z'}
    assert changes_needed(Policy(Retention.parse('1d')), current, NOW, NOW) == {}
    assert changes_needed(Policy(Retention.parse('2026-02-01')), current, NOW, NOW) == {}


def test_legal_hold_false_is_never_sent():
    policy = Policy(Retention.parse('7d'), legal_hold=False)
    held = lock('2026-02-07T12:00:00Z', legal_hold=True)
    assert 'legal_hold' not in changes_needed(policy, held, NOW, NOW)
    assert changes_needed(Policy(None, legal_hold=True), held, NOW, NOW) == {}


def test_schedule_coalesces_events_per_file_and_settle_restarts_the_clock():
    schedule = Schedule()
    for _ in range(100):
        schedule.touch('42', '/a/f.txt', 0.2, restart=True)
    schedule.touch('42', '/a/renamed.txt', 0.2, restart=True)
    assert len(schedule) == 1
    started = time.monotonic()
    entry = schedule.take()
    assert entry.file_id == '42' and entry.path == '/a/renamed.txt'
    assert time.monotonic() - started >= 0.15


def test_schedule_interval_keeps_the_first_due_time():
    schedule = Schedule()
    schedule.touch('7', '/f', 0.0, restart=False)
    schedule.touch('7', '/f', 30.0, restart=False)  # a later event does not postpone it
    assert schedule.take().file_id == '7'


def test_closing_the_schedule_releases_waiting_workers():
    schedule = Schedule()
    schedule.touch('1', '/f', 60.0)
    schedule.close()
    assert schedule.take() is None


def test_a_file_changed_while_being_locked_waits_for_that_worker():
    schedule = Schedule()
    schedule.touch('9', '/f', 0.0)
    first = schedule.take()
    schedule.touch('9', '/f', 0.0)  # e.g. child_data_written after child_file_added
    taken = []
    worker = threading.Thread(target=lambda: taken.append(schedule.take()))
    worker.start()
    worker.join(0.3)
    assert taken == []  # not handed to a second worker while the first one holds it
    schedule.finished(first.file_id)
    worker.join(5)
    assert taken[0].file_id == '9'


def test_a_file_due_in_the_far_future_does_not_kill_the_worker_waiting_for_it():
    # A wait longer than threading.TIMEOUT_MAX raises OverflowError: the worker died, silently.
    schedule = Schedule()
    schedule.touch('far', '/far', 1e10)
    taken, errors = [], []

    def worker():
        try:
            taken.append(schedule.take())
        except Exception as e:  # what would kill a lock worker
            errors.append(e)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(0.3)
    schedule.touch('near', '/near', 0)
    thread.join(5)
    assert errors == [] and [t.file_id for t in taken] == ['near']


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


@pytest.mark.parametrize('event', [
    None, 1, [1, 2], 'child_file_added',
    {'type': 'child_file_added', 'path': 'a', 'spine': 7},
    {'type': 'child_file_added', 'path': 7, 'spine': ['1']},
    {'type': 7, 'path': 'a', 'spine': ['1']},
    {'type': 'child_file_added', 'path': 'a', 'spine': ['1', 2]},
    {'type': 'child_file_added', 'path': 'a', 'spine': ['1', '12ab']},
    {'type': 'child_file_added', 'path': 'a', 'spine': ['1', '\u00b2']},  # a digit, but not 0-9
    {'type': 'child_file_added', 'path': '../x', 'spine': ['1', '']},
    {'type': 'child_file_added', 'path': 'sub/../../x', 'spine': ['1', '']},
    {'type': 'child_file_added', 'path': '/etc/x', 'spine': ['1', '']},
])
def test_a_malformed_event_is_recognised(event):
    assert parse_event(event) is None


def test_a_well_formed_event_gives_type_path_and_id():
    assert parse_event({'type': 'child_file_added', 'path': 'sub/a.txt', 'spine': ['2', '3', '42'],
                        'stream_name': None}) == ('child_file_added', 'sub/a.txt', '42')
    # The emulator's known difference: a file gone before it was read has no id left.
    assert parse_event({'type': 'child_file_removed', 'path': 'gone', 'spine': ['2', '']}) == \
        ('child_file_removed', 'gone', '')
    assert parse_event({'type': 'self_removed', 'path': '', 'spine': ['2']}) == ('self_removed', '', '2')


@pytest.mark.slow
def test_a_worker_that_fails_after_taking_a_file_leaves_it_to_be_tried_again():
    # Stand-ins for the cluster side: the worker loop itself is what is under test.
    class Client:
        def clone(self):
            return self

    class Locker:
        def process(self, client, pending):
            return Outcome('locked', pending.file_id, pending.path)

    class Audit:
        def __init__(self):
            self.recorded = []

        def record(self, outcome):
            self.recorded.append(outcome.file_id)
            if len(self.recorded) == 1:
                raise RuntimeError('an error nobody expected')

    audit = Audit()
    watcher = Watcher(Client(), None, WatchOptions(workers=1), Locker(), audit, None)
    watcher.schedule.touch('5', '/drop/a', 0)
    watcher.start_workers()
    try:
        deadline = time.monotonic() + 10
        while len(audit.recorded) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert audit.recorded == ['5', '5']  # taken again after the worker started over
    finally:
        watcher.stop()
        watcher.drain(5)
