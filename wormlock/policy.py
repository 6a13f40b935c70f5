"""Watched folders and their rules: from the command line, or from a policy file (TOML).

    [defaults]                       # optional: what every folder has unless it says otherwise
    retention = "7y"
    exclude = ["*.tmp", "~$*", ".~lock.*#"]

    [[folder]]
    name = "finance"                 # names the policy in the audit log and the metrics
    path = "/finance/records"
    recursive = true
    retention = "7y"                 # a period (7d, 6m, 2y) or a date
    legal_hold = false               # true, or a matter name: "CASE-2026-17"
    settle = 60                      # or: interval = 15
    events = ["child_file_added", "child_data_written", "child_file_moved_to"]

A file is locked under the policy of the most specific folder that holds it: the longest folder
path above it, where a folder that is not recursive holds only the files directly in it.
Excludes are shell patterns matched against a file's name (`*.tmp`, `~$*` and `.~lock.*#` are the
temporary and lock files office suites write next to a document).
"""

import datetime as dt
import math
import posixpath
import tomllib
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import PolicyError
from .locker import Policy
from .retention import Retention, RetentionError
from .watcher import DEFAULT_EVENTS, EVENT_TYPES, WatchOptions, excluded

# The longest --interval and --settle: a timer cannot wait past ~292 years, and no file needs to
# be quiet for more than a month.
MAX_WAIT_S = 30 * 86400
MAX_MATTER = 128
FOLDER_KEYS = frozenset(
    {'name', 'path', 'recursive', 'retention', 'legal_hold', 'settle', 'interval', 'events', 'exclude'}
)


@dataclass(frozen=True)
class Folder:
    name: str
    path: str
    recursive: bool = False
    retention: Optional[Retention] = None
    legal_hold: bool = False
    matter: Optional[str] = None
    settle_s: Optional[float] = None
    interval_s: float = 15.0
    events: Tuple[str, ...] = DEFAULT_EVENTS
    exclude: Tuple[str, ...] = ()

    def watch_options(self, rescan_every_s: Optional[float] = None) -> WatchOptions:
        return WatchOptions(
            directory_path=self.path,
            recursive=self.recursive,
            events=self.events,
            interval_s=self.interval_s,
            settle_s=self.settle_s,
            rescan_every_s=rescan_every_s,
            exclude=self.exclude,
        )

    def lock_policy(self) -> Policy:
        return Policy(retention=self.retention, legal_hold=self.legal_hold, settle_s=self.settle_s, matter=self.matter)

    def holds(self, path: str) -> bool:
        parent = posixpath.dirname(path.rstrip('/'))
        if parent == self.path:
            return True
        top = self.path.rstrip('/') + '/'
        return self.recursive and parent.startswith(top)

    def excludes(self, path: str) -> bool:
        return excluded(self.exclude, path)

    def lock_text(self) -> str:
        """What is set and when, for the header: `retention 7d; lock 15 s after an event`."""
        hold = (f'legal hold ({self.matter})' if self.matter else 'legal hold') if self.legal_hold else ''
        lock = ' and '.join(filter(None, [f'retention {self.retention}' if self.retention else '', hold]))
        timing = (
            f'lock once quiet for {self.settle_s:g} s'
            if self.settle_s
            else f'lock {self.interval_s:g} s after an event'
            if self.interval_s
            else 'lock at once'
        )
        return f'{lock}; {timing}'


class Folders:
    """The watched folders, asked which one's policy applies to a file."""

    def __init__(self, folders: Sequence[Folder]):
        # Longest path first: the first folder that holds a file is the most specific.
        self._by_depth = sorted(folders, key=lambda f: len(f.path), reverse=True)

    def __iter__(self):
        return iter(self._by_depth)

    def for_path(self, path: Optional[str]) -> Optional[Folder]:
        if not path:
            return None
        return next((f for f in self._by_depth if f.holds(path)), None)


def load(path: str, now: dt.datetime) -> List[Folder]:
    """The folders of a policy file; PolicyError names the first thing wrong in it."""
    try:
        with open(path, 'rb') as f:
            data = tomllib.load(f)
    except OSError as e:
        raise PolicyError(f'--policy {path}: cannot read it: {e.strerror or e}') from None
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f'--policy {path}: not valid TOML: {e}') from None
    unknown = set(data) - {'defaults', 'folder'}
    if unknown:
        raise PolicyError(
            f'--policy {path}: unknown section {", ".join(sorted(unknown))}; use [defaults] and [[folder]]'
        )
    defaults = data.get('defaults', {})
    entries = data.get('folder', [])
    if not isinstance(defaults, dict) or not isinstance(entries, list) or not entries:
        raise PolicyError(f'--policy {path}: name at least one folder in a [[folder]] table')
    folders = [_folder({**defaults, **entry}, f'{path}, folder {n}', now) for n, entry in enumerate(entries, 1)]
    check_distinct(folders, f'--policy {path}')
    return folders


def check_distinct(folders: Sequence[Folder], where: str) -> None:
    for attribute in ('path', 'name'):
        seen = set()
        for folder in folders:
            value = getattr(folder, attribute)
            if value in seen:
                raise PolicyError(f'{where}: two folders have the {attribute} {value}')
            seen.add(value)


def _folder(entry: Mapping[str, Any], where: str, now: dt.datetime) -> Folder:
    if not isinstance(entry, dict):
        raise PolicyError(f'{where}: a folder is a table of keys')
    unknown = set(entry) - FOLDER_KEYS
    if unknown:
        raise PolicyError(
            f'{where}: unknown key {", ".join(sorted(unknown))}; keys are {", ".join(sorted(FOLDER_KEYS))}'
        )
    path = entry.get('path')
    if not isinstance(path, str) or not path.startswith('/'):
        raise PolicyError(f'{where}: path must be an absolute cluster path')
    path = path.rstrip('/') or '/'
    where = f'{where} ({path})'
    name = entry.get('name', path)
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise PolicyError(f'{where}: name must be printable text')
    hold = entry.get('legal_hold', False)
    matter = hold if isinstance(hold, str) else None
    if not isinstance(hold, (bool, str)) or (matter is not None and not valid_matter(matter)):
        raise PolicyError(f'{where}: legal_hold must be true, false or a matter name (printable, at most {MAX_MATTER})')
    retention = None
    if entry.get('retention') is not None:
        try:
            retention = Retention.parse(str(entry['retention']))
            retention.check_future(now)
        except RetentionError as e:
            raise PolicyError(f'{where}: {e}') from None
    if retention is None and not hold:
        raise PolicyError(f'{where}: nothing to lock with: give retention, legal_hold, or both')
    settle = _seconds(entry, 'settle', where, low_exclusive=True)
    interval = _seconds(entry, 'interval', where)
    return Folder(
        name=name.strip(),
        path=path,
        recursive=_bool(entry, 'recursive', where),
        retention=retention,
        legal_hold=bool(hold),
        matter=matter,
        settle_s=settle,
        interval_s=15.0 if interval is None else interval,
        events=events_of(entry.get('events', list(DEFAULT_EVENTS)), where),
        exclude=_strings(entry.get('exclude', []), 'exclude', where),
    )


def valid_matter(text: str) -> bool:
    return 0 < len(text) <= MAX_MATTER and text.isprintable() and text.strip() == text


def events_of(value: Any, where: str) -> Tuple[str, ...]:
    events = _strings(value, 'events', where)
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown or not events:
        raise PolicyError(
            f'{where}: unknown event type {", ".join(unknown) or "(none)"}; choose from {", ".join(EVENT_TYPES)}'
        )
    return tuple(dict.fromkeys(events))


def _strings(value: Any, key: str, where: str) -> Tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f'{where}: {key} must be a list of non-empty strings')
    return tuple(value)


def _bool(entry: Mapping[str, Any], key: str, where: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise PolicyError(f'{where}: {key} must be true or false')
    return value


def _seconds(entry: Dict[str, Any], key: str, where: str, low_exclusive: bool = False) -> Optional[float]:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PolicyError(f'{where}: {key} must be a number of seconds')
    if value < 0 or (low_exclusive and value == 0) or value > MAX_WAIT_S:
        raise PolicyError(
            f'{where}: {key} must be {"more than" if low_exclusive else "at least"} 0 and at most {MAX_WAIT_S} s'
        )
    return float(value)
