"""RFC 3339 times as the cluster writes them: UTC, 'Z', nanoseconds when there are any."""

import calendar
import functools
import re
import time

from ..errors import bad_request

_RFC3339 = re.compile(r'^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)$')


def parse_ns(text):
    match = _RFC3339.match(str(text))
    if not match:
        raise bad_request(f'Invalid RFC 3339 time: {text!r}')
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or '', match.group(8)
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        raise bad_request(f'Invalid RFC 3339 time: {text!r}')
    if zone not in ('Z', 'z'):
        sign = 1 if zone[0] == '+' else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1_000_000_000 + int(fraction.ljust(9, '0') or 0)


@functools.lru_cache(maxsize=4096)
def _format_seconds(seconds):
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))


def format_ns(ns):
    seconds, fraction = divmod(int(ns), 1_000_000_000)
    text = _format_seconds(seconds)
    return f'{text}.{fraction:09d}Z' if fraction else text + 'Z'


def now_ns():
    return time.time_ns()
