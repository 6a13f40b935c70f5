"""One row per open SMB file handle; the columns shown for it; filtering and sorting rows."""

import ipaddress
import re
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

# A handle may read, write and delete at once; these decide which words it gets. Each right is
# named as the API lists access masks (rest-api-guide/smb-file-administration/smb_files.md),
# directory rights included (listing reads, adding a file or folder writes). The whole-file rights
# (generic all, file all) and MAXIMUM_ALLOWED (whatever the user may: possibly everything) count
# as all three: a handle holding them may be writing.
_ALL = frozenset({'MS_ACCESS_GENERIC_ALL', 'MS_ACCESS_FILE_ALL', 'MS_ACCESS_MAXIMUM_ALLOWED'})
_READS = _ALL | {
    'MS_ACCESS_FILE_READ_DATA',
    'MS_ACCESS_FILE_LIST_DIRECTORY',
    'MS_ACCESS_GENERIC_READ',
    'MS_ACCESS_FILE_EXECUTE',
    'MS_ACCESS_FILE_TRAVERSE',
    'MS_ACCESS_GENERIC_EXECUTE',
}
_WRITES = _ALL | {
    'MS_ACCESS_FILE_WRITE_DATA',
    'MS_ACCESS_FILE_APPEND_DATA',
    'MS_ACCESS_FILE_ADD_FILE',
    'MS_ACCESS_FILE_ADD_SUBDIRECTORY',
    'MS_ACCESS_GENERIC_WRITE',
}
_DELETES = _ALL | {'MS_ACCESS_DELETE', 'MS_ACCESS_FILE_DELETE_CHILD'}


def access_mode(access_mask: Iterable[str]) -> str:
    """'read', 'write', 'read+write' (+'delete'), 'delete'; 'metadata' for opens that touch no data,
    such as the Finder's Quick Look reading attributes, or a change of permissions."""
    mask = set(access_mask or ())
    words = [word for word, rights in (('read', _READS), ('write', _WRITES), ('delete', _DELETES)) if mask & rights]
    return '+'.join(words) or 'metadata'


def short_mode(mode: str) -> str:
    """API_SHARE_MODE_EXCLUDE_WRITE -> exclude-write; API_BYTE_RANGE_EXCLUSIVE -> exclusive."""
    for prefix in ('API_SHARE_MODE_', 'API_BYTE_RANGE_'):
        if mode.startswith(prefix):
            mode = mode[len(prefix) :]
    return mode.lower().replace('_', '-')


_DIGITS = re.compile(r'([0-9]+)')


def natural_key(text: str) -> Tuple[object, ...]:
    """'file200' before 'file1000', as people count: digit runs compare as numbers, the rest
    without case. One flat tuple (kind, value, kind, value...), ordered as pairs would be; the
    texts between numbers (folder names, extensions) are shared by every key that has them."""
    key: List[object] = []
    for part in _DIGITS.split(text):
        if part.isdigit():
            key += (1, int(part))
        elif part:
            key += (0, sys.intern(part.casefold()))
    return tuple(key)


def duration_text(seconds: Optional[float]) -> str:
    """'45 s', '12 min', '3 h 05 min', '2 d 4 h'; '' when unknown."""
    if seconds is None:
        return ''
    return _duration_text(int(seconds))


@lru_cache(maxsize=4096)
def _duration_text(s: int) -> str:
    # One text for every row that shows it: 20,000 rows have a few hundred durations.
    if s < 60:
        return f'{s} s'
    if s < 3600:
        return f'{s // 60} min'
    if s < 86400:
        return f'{s // 3600} h {s % 3600 // 60:02d} min'
    return f'{s // 86400} d {s % 86400 // 3600} h'


def since_text(moment: Optional[float]) -> str:
    """An epoch time as local 'YYYY-MM-DD HH:MM'; '' when unknown."""
    return _minute_text(int(moment // 60)) if moment is not None else ''


@lru_cache(maxsize=4096)
def _minute_text(minute: int) -> str:
    return time.strftime('%Y-%m-%d %H:%M', time.localtime(minute * 60))


@lru_cache(maxsize=4096)
def _locks_text(share_modes: Tuple[str, ...], byte_range_locks: int, byte_range_modes: Tuple[str, ...]) -> str:
    parts = []
    if share_modes:
        parts.append('share ' + '/'.join(short_mode(m) for m in share_modes))
    if byte_range_locks:
        modes = '/'.join(short_mode(m) for m in byte_range_modes)
        parts.append(f'{byte_range_locks} byte-range' + (f' ({modes})' if modes else ''))
    return '; '.join(parts) or 'none'


@dataclass(frozen=True, slots=True)
class HandleRow:
    """One handle as held from one client: a handle the cluster cannot tie to a single client
    (the same user on the same file from several) is one row per client, each with that client's
    grants, so each reads right.

    Slotted, and what is worked out from the fields (the sort key, the filter's text, the cells)
    is built on first use and kept: 20,000 rows live as long as the window shows them."""

    location: str  # the handle's own id on the cluster: what a close sends back
    file_id: str
    path: str
    user: str  # the resolved name, or the auth id when it cannot be resolved
    auth_id: str
    client: str  # the address the row's grants come from ('' when the file has none)
    access: str
    share_modes: Tuple[str, ...]
    byte_range_locks: int
    byte_range_modes: Tuple[str, ...] = ()
    host: str = ''  # the client's name in the cluster's DNS ('' when it has none)
    share: str = ''  # the SMB share the file was opened through, as far as the sessions tell
    opened: Optional[float] = None  # epoch time its session opened (a handle carries no open time)
    idle_s: Optional[float] = None  # seconds since its session last opened or closed a file
    # The path's sort key: the rows of one file may share theirs (lockmanager.join hands it in).
    known_path_key: Optional[Tuple[object, ...]] = field(default=None, repr=False, compare=False)
    _haystack: Optional[str] = field(default=None, init=False, repr=False, compare=False)
    _cells: Optional[Tuple[str, ...]] = field(default=None, init=False, repr=False, compare=False)
    _key: Optional[str] = field(default=None, init=False, repr=False, compare=False)

    @property
    def path_key(self) -> Tuple[object, ...]:
        """The path's natural sort key, kept: every sort orders by it."""
        key = self.known_path_key
        if key is None:
            key = natural_key(self.path)
            object.__setattr__(self, 'known_path_key', key)
        return key

    @property
    def haystack(self) -> str:
        """Lower-cased path, user, client and host, built once: the live filter scans 20,000 rows a keystroke."""
        text = self._haystack
        if text is None:
            text = '\n'.join((self.path, self.user, self.auth_id, self.client, self.host, self.share)).casefold()
            object.__setattr__(self, '_haystack', text)
        return text

    @property
    def key(self) -> str:
        """Unique among a listing's rows (a handle may have a row per client); kept, since the
        window indexes and selects rows by it after every listing."""
        key = self._key
        if key is None:
            key = f'{self.location} {self.client}'
            object.__setattr__(self, '_key', key)
        return key

    @property
    def locks_text(self) -> str:
        return _locks_text(self.share_modes, self.byte_range_locks, self.byte_range_modes)

    @property
    def cells(self) -> Tuple[str, ...]:
        """The row as the table shows it; kept, since the table is refilled on every filter change."""
        cells = self._cells
        if cells is None:
            cells = _handle_cells(self)
            object.__setattr__(self, '_cells', cells)
        return cells

    @property
    def label(self) -> str:
        """How a close's outcome names it."""
        return f'{self.path} ({self.who}, file id {self.file_id})'

    @property
    def who(self) -> str:
        """'alice from 10.0.0.5 (ws-alice)': how dialogs and reports name the holder."""
        if not self.client:
            return self.user
        return f'{self.user} from {self.client}' + (f' ({self.host})' if self.host else '')


@dataclass(frozen=True)
class SessionRow:
    """One SMB session: a user connected from a client, to some shares."""

    location: str  # what a close sends back
    user: str
    auth_id: str
    client: str
    host: str
    shares: Tuple[str, ...]
    open_handles: int
    opened: Optional[float]  # epoch time
    idle_s: Optional[float]
    guest: bool
    encrypted: bool

    @property
    def key(self) -> str:
        return self.location

    @property
    def who(self) -> str:
        return f'{self.user} from {self.client}' + (f' ({self.host})' if self.host else '')

    @property
    def label(self) -> str:
        """How a close's outcome names it."""
        return f'the session of {self.who} ({", ".join(self.shares) or "no share"}, {self.location})'

    @cached_property
    def cells(self) -> Tuple[str, ...]:
        return tuple(column.text(self) for column in SESSION_COLUMNS)


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    width: int  # in characters, a hint for the window
    text: Callable[[Any], str]
    sort_key: Callable[[Any], object]


def _number(text: str) -> Tuple[int, str]:
    return (int(text), text) if text.isdigit() else (1 << 62, text)


@lru_cache(maxsize=65536)  # a listing has one client for many rows
def address_key(text: str) -> Tuple[int, int, str]:
    # 10.0.0.5 before 10.0.0.10, as an admin reads them; names after numbers.
    try:
        address = ipaddress.ip_address(text)
        return (address.version, int(address), text)
    except ValueError:
        return (9, 0, text)


def _unknown_last(value: Optional[float]) -> Tuple[int, float]:
    return (0, value) if value is not None else (1, 0.0)


COLUMNS: Tuple[Column, ...] = (
    Column('path', 'Path', 30, lambda r: r.path, lambda r: r.path_key),
    Column('share', 'Share', 10, lambda r: r.share, lambda r: natural_key(r.share)),
    Column('user', 'User', 12, lambda r: r.user, lambda r: natural_key(r.user)),
    Column('client', 'Client', 14, lambda r: r.client, lambda r: address_key(r.client)),
    Column('host', 'Host name', 16, lambda r: r.host, lambda r: natural_key(r.host)),
    Column('access', 'Access', 10, lambda r: r.access, lambda r: r.access),
    Column('locks', 'Locks held', 30, lambda r: r.locks_text, lambda r: r.locks_text),
    Column('opened', 'Open since', 16, lambda r: since_text(r.opened), lambda r: _unknown_last(r.opened)),
    Column('idle', 'Idle', 9, lambda r: duration_text(r.idle_s), lambda r: _unknown_last(r.idle_s)),
    Column('file_id', 'File ID', 10, lambda r: r.file_id, lambda r: _number(r.file_id)),
)
COLUMN_BY_KEY = {column.key: column for column in COLUMNS}


def _handle_cells(r: HandleRow) -> Tuple[str, ...]:
    # COLUMNS' texts in one expression: a third of the time of calling each column's, for the
    # 20,000 rows of a listing (the order is checked below).
    return (
        r.path,
        r.share,
        r.user,
        r.client,
        r.host,
        r.access,
        _locks_text(r.share_modes, r.byte_range_locks, r.byte_range_modes),
        _minute_text(int(r.opened // 60)) if r.opened is not None else '',
        _duration_text(int(r.idle_s)) if r.idle_s is not None else '',
        r.file_id,
    )


assert [c.key for c in COLUMNS] == [
    'path',
    'share',
    'user',
    'client',
    'host',
    'access',
    'locks',
    'opened',
    'idle',
    'file_id',
]

SESSION_COLUMNS: Tuple[Column, ...] = (
    Column('user', 'User', 12, lambda r: r.user, lambda r: natural_key(r.user)),
    Column('client', 'Client', 14, lambda r: r.client, lambda r: address_key(r.client)),
    Column('host', 'Host name', 16, lambda r: r.host, lambda r: natural_key(r.host)),
    Column('shares', 'Shares', 20, lambda r: ', '.join(r.shares), lambda r: natural_key(', '.join(r.shares))),
    Column('open_handles', 'Open files', 9, lambda r: str(r.open_handles), lambda r: r.open_handles),
    Column('opened', 'Open since', 16, lambda r: since_text(r.opened), lambda r: _unknown_last(r.opened)),
    Column('idle', 'Idle', 9, lambda r: duration_text(r.idle_s), lambda r: _unknown_last(r.idle_s)),
    Column('guest', 'Guest', 6, lambda r: 'yes' if r.guest else 'no', lambda r: r.guest),
    Column('encrypted', 'Encrypted', 9, lambda r: 'yes' if r.encrypted else 'no', lambda r: r.encrypted),
)
SESSION_COLUMN_BY_KEY = {column.key: column for column in SESSION_COLUMNS}


def plural(n: int, noun: str) -> str:
    """'1 handle', '2,000 handles'."""
    return f'{n:,} {noun}' + ('' if n == 1 else 's')


def sort_rows(rows: Iterable[HandleRow], key: str, descending: bool = False) -> List[HandleRow]:
    """Sorted by one column; ties keep path, user and handle order, so a re-sort never shuffles them."""
    column = COLUMN_BY_KEY[key]
    ordered = sorted(rows, key=lambda r: (r.path_key, r.user.casefold(), r.key))
    return ordered if key == 'path' and not descending else sorted(ordered, key=column.sort_key, reverse=descending)


def sort_sessions(rows: Iterable[SessionRow], key: str, descending: bool = False) -> List[SessionRow]:
    column = SESSION_COLUMN_BY_KEY[key]
    ordered = sorted(rows, key=lambda r: (r.user.casefold(), address_key(r.client), r.location))
    return sorted(ordered, key=column.sort_key, reverse=descending)


def matches_text(row: HandleRow, text: str) -> bool:
    """The live filter: the text anywhere in the path, the user or a client address."""
    return text.casefold() in row.haystack


@dataclass(frozen=True)
class Selector:
    """What --list/--close pick: every given criterion must hold."""

    path: Optional[str] = None  # a part of the path, any case
    file_id: Optional[str] = None
    user: Optional[str] = None  # the user name (any case) or auth id
    client: Optional[str] = None  # the client address exactly, or its host name (any case)

    def matches(self, row: HandleRow) -> bool:
        # A blank pattern matches nothing: '' is in every path, and a selector picks handles to close.
        # The command line refuses a blank pattern first; this is the second guard, where they are picked.
        if any(text is not None and not text.strip() for text in (self.path, self.user, self.client)):
            return False
        if self.path is not None and self.path.casefold() not in row.path.casefold():
            return False
        if self.file_id is not None and row.file_id != self.file_id:
            return False
        if self.user is not None and self.user.casefold() not in (row.user.casefold(), row.auth_id):
            return False
        return self.client is None or self.client == row.client or self.client.casefold() == row.host.casefold()

    def pick(self, rows: Sequence[HandleRow]) -> List[HandleRow]:
        return [row for row in rows if self.matches(row)]

    def pick_sessions(self, rows: Sequence[SessionRow]) -> List[SessionRow]:
        """Sessions by --user and --client (a session has no path or file)."""
        if any(text is not None and not text.strip() for text in (self.user, self.client)):
            return []
        return [
            row
            for row in rows
            if (self.user is None or self.user.casefold() in (row.user.casefold(), row.auth_id))
            and (self.client is None or self.client == row.client or self.client.casefold() == row.host.casefold())
        ]

    def describe(self) -> str:
        given = [
            f'{name} {value}'
            for name, value in (
                ('path containing', self.path),
                ('file id', self.file_id),
                ('user', self.user),
                ('client', self.client),
            )
            if value is not None
        ]
        return ', '.join(given) or 'any handle'
