"""wormlock.locker: the changes that bring a file's lock up to the policy, never weakening it (no
cluster)."""

import datetime as dt

from wormlock.locker import Policy, changes_needed
from wormlock.retention import Retention

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


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
