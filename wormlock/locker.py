"""Locking one file: re-read it, decide what (if anything) to change, change it, read it back.

The rules that keep a lock from being weakened live in `changes_needed`: retention only ever
extends, a legal hold is only ever set, and only the fields that change are sent.
"""

import datetime as dt
import logging
from dataclasses import dataclass, fields
from typing import Any, Dict, Mapping, Optional

import qumulo.rest.fs as rest_fs
from qumulo.lib.request import RequestError

from common.auth import Client
from common.errors import reading_reply
from .clock import ClusterClock
from .retention import Retention, format_time, parse_time
from .schedule import Pending
from .walk import FILE, refusal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    retention: Optional[Retention] = None
    legal_hold: bool = False
    settle_s: Optional[float] = None  # None: no quiet-period check, lock --interval after the first event
    matter: Optional[str] = None  # the legal hold's matter (--legal-hold MATTER): recorded, not sent


@dataclass
class Outcome:
    result: str  # locked, already-locked, would-lock, unsettled, skipped-not-a-file, gone, failed
    file_id: str
    path: Optional[str] = None
    size: Optional[str] = None
    retention_until: Optional[str] = None
    legal_hold: Optional[bool] = None
    matter: Optional[str] = None  # the policy's matter, for the audit log: the cluster stores none
    error: Optional[str] = None
    retry_in: Optional[float] = None  # for 'unsettled': seconds until the file may be quiet
    policy: Optional[str] = None  # the name of the folder policy the file was locked under

    def record(self) -> Dict[str, Any]:
        # Its fields one level deep (all plain values): asdict's deep copy cost a burst a tenth
        # of the audit log's time.
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != 'retry_in'}


def changes_needed(policy: Policy, lock: Mapping[str, Any], modified: dt.datetime, now: dt.datetime) -> Dict[str, Any]:
    """The file-lock PATCH body that brings `lock` up to `policy` (empty: nothing to do)."""
    changes = {}
    if policy.retention is not None:
        current = parse_time(lock['retention_period']) if lock.get('retention_period') else None
        if not policy.retention.is_met(current, modified):
            target = whole_second_after(policy.retention.target(now))
            if current is None or target > current:
                changes['retention_period'] = format_time(target)
    if policy.legal_hold and not lock.get('legal_hold'):
        changes['legal_hold'] = True
    return changes


class Locker:
    def __init__(self, policy: Policy, clock: ClusterClock, dry_run: bool = False):
        self.policy = policy
        self.clock = clock
        self.dry_run = dry_run

    def process(self, client: Client, pending: Pending, at_once: bool = True) -> Outcome:
        """Lock the file as the policy asks. `at_once`: it may be done in one call when an event
        named the file and nothing needs settling (False for a file this watcher locked already:
        a late event for it must not push its retention)."""
        try:
            with reading_reply("the file's attributes or lock"):
                return self._process(client, pending, at_once)
        except RequestError as e:
            if e.status_code == 404:
                return Outcome('gone', pending.file_id, pending.path, matter=self.policy.matter)
            if e.status_code >= 500 or e.status_code == 429:
                raise  # the cluster's trouble, not the file's: the worker tries again later
            # Refused for this file (403: the account lacks WRITE_ACL or READ_ACL on it; 400...):
            # recorded with the cluster's reason, and the watcher goes on with the others.
            return Outcome('failed', pending.file_id, pending.path, matter=self.policy.matter, error=refusal(e))

    def _process(self, client: Client, pending: Pending, at_once: bool) -> Outcome:
        if at_once and pending.source == 'event' and not self.policy.settle_s and not self.dry_run:
            outcome = self._lock_at_once(client, pending)
            if outcome is not None:
                return outcome
        attrs = _read(client, pending.file_id)
        outcome = Outcome('already-locked', attrs['id'], attrs['path'], attrs['size'], matter=self.policy.matter)
        if attrs['type'] != FILE:
            outcome.result = 'skipped-not-a-file'
            return outcome
        now = self.clock.now()
        modified = parse_time(attrs['modification_time'])
        wait = self._settle_wait(pending, attrs, modified, now)
        if wait:
            outcome.result, outcome.retry_in = 'unsettled', wait
            return outcome
        changes = changes_needed(self.policy, attrs['lock'], modified, now)
        if changes and self.dry_run:
            outcome.result = 'would-lock'
            _describe(outcome, dict(attrs['lock'], **changes))
            return outcome
        if changes:
            # The cluster answers the change with the file's attributes and the lock it now holds:
            # that lock, not what was asked for, is checked and recorded.
            lock = rest_fs.modify_file_lock(client.conninfo, client.credentials, id_=attrs['id'], **changes).data[
                'lock'
            ]
            if changes_needed(self.policy, lock, modified, now):
                outcome.result, outcome.error = 'failed', f'the cluster reports the lock as {lock}, not what was set'
            else:
                outcome.result = 'locked'
            _describe(outcome, lock)
            return outcome
        _describe(outcome, attrs['lock'])
        return outcome

    def _lock_at_once(self, client: Client, pending: Pending) -> Optional[Outcome]:
        """One call for a file an event named, when nothing needs settling: the lock change
        cannot shorten a retention (the cluster refuses that), and its answer carries the lock
        the file now holds, so the read first is not needed. A file the event named was just
        written or put in place, and a locked file can be neither, so the retention set is
        the one a read would have led to. None: the cluster refused the change as such (a
        longer retention already, not a file), and the read decides what to record."""
        now = self.clock.now()
        changes: Dict[str, Any] = {}
        if self.policy.retention is not None:
            changes['retention_period'] = format_time(whole_second_after(self.policy.retention.target(now)))
        if self.policy.legal_hold:
            changes['legal_hold'] = True
        try:
            attrs = rest_fs.modify_file_lock(client.conninfo, client.credentials, id_=pending.file_id, **changes).data
        except RequestError as e:
            if e.status_code == 400:
                return None
            raise
        outcome = Outcome('locked', attrs['id'], attrs['path'], attrs['size'], matter=self.policy.matter)
        if changes_needed(self.policy, attrs['lock'], parse_time(attrs['modification_time']), now):
            outcome.result, outcome.error = (
                'failed',
                f'the cluster reports the lock as {attrs["lock"]}, not what was set',
            )
        _describe(outcome, attrs['lock'])
        return outcome

    def _settle_wait(
        self, pending: Pending, attrs: Mapping[str, Any], modified: dt.datetime, now: dt.datetime
    ) -> float:
        """Seconds still to wait before the file counts as finished (0: it has been quiet)."""
        settle = self.policy.settle_s
        if not settle:
            return 0
        if pending.size_seen is not None and pending.size_seen != attrs['size']:
            return settle  # it grew or shrank since the last look: the clock starts again
        quiet_for = (now - modified).total_seconds()
        if pending.size_seen is None and quiet_for < settle:
            return settle - max(quiet_for, 0)
        return 0 if quiet_for >= settle else settle - quiet_for


def _read(client: Client, file_id: str) -> Dict[str, Any]:
    # The module function on the client's connection (session renewal included) rather than
    # client.fs: the SDK's per-call retry wrapper captures a stack trace on every call, a tenth
    # of the watcher's CPU in a burst, and the worker already retries a file that failed.
    return rest_fs.get_file_attr(client.conninfo, client.credentials, id_=file_id, retrieve_file_lock=True).data


def whole_second_after(moment: dt.datetime) -> dt.datetime:
    # Retention is written in whole seconds; rounding up keeps it at or past what was asked.
    return moment if not moment.microsecond else moment.replace(microsecond=0) + dt.timedelta(seconds=1)


def _describe(outcome: Outcome, lock: Mapping[str, Any]) -> None:
    outcome.retention_until = lock.get('retention_period')
    outcome.legal_hold = bool(lock.get('legal_hold'))
