"""What `--retention` asks for, and when a file's current lock already satisfies it.

Periods count on the calendar, as every WORM system does: one month after 31 January is the last
day of February, one year after 29 February 2028 is 28 February 2029.
"""

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Optional

UTC = dt.timezone.utc
_PERIOD = re.compile(r'^(\d+)\s*([dmy])$', re.IGNORECASE)
_RFC3339 = re.compile(r'^(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(\.\d+)?(Z|z|[+-]\d\d:\d\d)$')
# The longest period accepted, per unit: 1000 years keeps every date computable (a datetime ends
# in year 9999) and is longer than any records schedule; "for ever" is a legal hold.
MAX_AMOUNT = {'d': 365250, 'm': 12000, 'y': 1000}


class RetentionError(ValueError):
    pass


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def parse_time(text: str) -> dt.datetime:
    """An RFC 3339 time as the cluster writes it (nanoseconds allowed) -> aware datetime."""
    found = _RFC3339.match(text.strip())
    if not found:
        raise RetentionError(f'not an RFC 3339 time: {text!r}')
    date, clock, fraction, zone = found.groups()
    micro = (fraction or '.0')[1:7].ljust(6, '0')
    zone = '+00:00' if zone in ('Z', 'z') else zone
    return dt.datetime.fromisoformat(f'{date}T{clock}.{micro}{zone}').astimezone(UTC)


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


@dataclass(frozen=True)
class Retention:
    """Either a period (`7d`, `6m`, `2y`) counted from when a file is locked, or a fixed date."""

    amount: int = 0
    unit: str = ''  # 'd', 'm' or 'y'; '' for a fixed date
    date: Optional[dt.datetime] = None

    @classmethod
    def parse(cls, text: str) -> 'Retention':
        text = str(text).strip()
        found = _PERIOD.match(text)
        if found:
            amount = int(found.group(1))
            unit = found.group(2).lower()
            if amount <= 0:
                raise RetentionError(f'--retention must be longer than zero (7d, 6m, 2y or a date), not {text!r}')
            if amount > MAX_AMOUNT[unit]:
                raise RetentionError(
                    f'--retention must be at most 1000y (12000m, 365250d), not {text!r}; '
                    f'use --legal-hold to keep files for ever'
                )
            return cls(amount, unit)
        try:
            if re.match(r'^\d{4}-\d\d-\d\d$', text):
                return cls(date=dt.datetime.fromisoformat(text).replace(tzinfo=UTC))
            return cls(date=parse_time(text))
        except (ValueError, RetentionError):
            raise RetentionError(f'--retention takes a period like 7d, 6m, 2y or a date like 2031-12-31, not {text!r}')

    def check_future(self, now: dt.datetime) -> None:
        """A fixed date already past would leave every file unlocked while logging it as locked."""
        if self.date is not None and self.date <= now:
            raise RetentionError(
                f'--retention {format_time(self.date)} is in the past (now '
                f'{format_time(now)}): give a later date or a period such as 7y'
            )

    def after(self, moment: dt.datetime) -> dt.datetime:
        if self.date is not None:
            return self.date
        if self.unit == 'd':
            return moment + dt.timedelta(days=self.amount)
        return add_months(moment, self.amount * (12 if self.unit == 'y' else 1))

    def target(self, now: dt.datetime) -> dt.datetime:
        """The retention to set on a file locked at `now` (the cluster's time)."""
        return self.after(now)

    def is_met(self, current: Optional[dt.datetime], modified: dt.datetime) -> bool:
        """Does an existing retention `current` satisfy this policy for a file last modified at
        `modified`? A locked file cannot change, so its modification time is a stable anchor:
        repeated events or rescans never push the date, yet a longer policy still extends it."""
        if current is None:
            return False
        return current >= (self.date if self.date is not None else self.after(modified))

    def __str__(self) -> str:
        if self.date is not None:
            return f'until {format_time(self.date)}'
        return f'{self.amount}{self.unit}'
