"""One row per open SMB file handle; the columns shown for it; filtering and sorting rows."""

import ipaddress
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

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


@dataclass(frozen=True)
class HandleRow:
    location: str  # the handle's own id on the cluster: what a close sends back
    file_id: str
    path: str
    user: str  # the resolved name, or the auth id when it cannot be resolved
    auth_id: str
    clients: Tuple[str, ...]  # addresses holding grants on this file, narrowed to the user's sessions
    access: str
    share_modes: Tuple[str, ...]
    byte_range_locks: int
    byte_range_modes: Tuple[str, ...] = ()
    # Lower-cased path, user and clients, built once: the live filter scans 20,000 rows a keystroke.
    haystack: str = field(default='', repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.haystack:
            text = '\n'.join((self.path, self.user, self.auth_id, *self.clients)).casefold()
            object.__setattr__(self, 'haystack', text)

    @property
    def client_text(self) -> str:
        return ', '.join(self.clients)

    @property
    def locks_text(self) -> str:
        parts = []
        if self.share_modes:
            parts.append('share ' + '/'.join(short_mode(m) for m in self.share_modes))
        if self.byte_range_locks:
            modes = '/'.join(short_mode(m) for m in self.byte_range_modes)
            parts.append(f'{self.byte_range_locks} byte-range' + (f' ({modes})' if modes else ''))
        return '; '.join(parts) or 'none'

    @cached_property
    def cells(self) -> Tuple[str, ...]:
        """The row as the table shows it; kept, since the table is refilled on every filter change."""
        return tuple(column.text(self) for column in COLUMNS)

    @property
    def who(self) -> str:
        """'alice from 10.0.0.5': how dialogs and reports name the holder."""
        return f'{self.user} from {self.client_text}' if self.clients else self.user


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    width: int  # in characters, a hint for the window
    text: Callable[[HandleRow], str]
    sort_key: Callable[[HandleRow], object]


def _number(text: str) -> Tuple[int, str]:
    return (int(text), text) if text.isdigit() else (1 << 62, text)


def _addresses(addresses: Tuple[str, ...]) -> Tuple[Tuple[int, int, str], ...]:
    # 10.0.0.5 before 10.0.0.10, as an admin reads them; names after numbers.
    keys = []
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
            keys.append((address.version, int(address), text))
        except ValueError:
            keys.append((9, 0, text))
    return tuple(keys)


COLUMNS: Tuple[Column, ...] = (
    Column('path', 'Path', 30, lambda r: r.path, lambda r: r.path.casefold()),
    Column('file_id', 'File ID', 10, lambda r: r.file_id, lambda r: _number(r.file_id)),
    Column('user', 'User', 14, lambda r: r.user, lambda r: r.user.casefold()),
    Column('client', 'Client', 16, lambda r: r.client_text, lambda r: _addresses(r.clients)),
    Column('access', 'Access', 12, lambda r: r.access, lambda r: r.access),
    Column('locks', 'Locks held', 52, lambda r: r.locks_text, lambda r: r.locks_text),
)
COLUMN_BY_KEY = {column.key: column for column in COLUMNS}


def plural(n: int, noun: str) -> str:
    """'1 handle', '2,000 handles'."""
    return f'{n:,} {noun}' + ('' if n == 1 else 's')


def sort_rows(rows: Iterable[HandleRow], key: str, descending: bool = False) -> List[HandleRow]:
    """Sorted by one column; ties keep path, user and handle order, so a re-sort never shuffles them."""
    column = COLUMN_BY_KEY[key]
    ordered = sorted(rows, key=lambda r: (r.path.casefold(), r.user.casefold(), r.location))
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
    client: Optional[str] = None  # one of the client addresses, exactly

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
        return self.client is None or self.client in row.clients

    def pick(self, rows: Sequence[HandleRow]) -> List[HandleRow]:
        return [row for row in rows if self.matches(row)]

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
