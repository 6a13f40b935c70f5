"""Rows from the cluster's separate listings, joined the only way they can be: by file id.

A handle names its file and its user but no client; a lock grant names its file and its client but
no user; a session names a user, a client and the shares it reached. So a row's client is an
address holding a grant on the handle's file, narrowed to the addresses its user has sessions from,
and among those to the clients whose opens do what the handle does (RowJoiner).
"""

import time
from collections import defaultdict
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from lockmanager.model import HandleRow, SessionRow, access_mode, address_key, natural_key

UNRESOLVED_PATH = '(path unknown)'

# The order the modes are shown in, whatever order the cluster lists them in.
_MODE_ORDER = {
    mode: n
    for n, mode in enumerate(
        (
            'API_SHARE_MODE_READ',
            'API_SHARE_MODE_WRITE',
            'API_SHARE_MODE_DELETE',
            'API_SHARE_MODE_EXCLUDE_READ',
            'API_SHARE_MODE_EXCLUDE_WRITE',
            'API_SHARE_MODE_EXCLUDE_DELETE',
            'API_BYTE_RANGE_EXCLUSIVE',
            'API_BYTE_RANGE_SHARED',
            'API_BYTE_RANGE_READ_OP',
            'API_BYTE_RANGE_WRITE_OP',
        )
    )
}

# file id -> client address -> the modes its grants on that file hold, in display order
GrantIndex = Dict[str, Dict[str, Tuple[str, ...]]]

# What a row says about who holds the file and from where, the same for each handle of one user
# with one access on it: user, client, share modes, byte-range modes, host, share, opened, idle s.
_Holder = Tuple[str, str, Tuple[str, ...], Tuple[str, ...], str, str, Optional[float], Optional[float]]


def index_grants(grants: Iterable[Mapping]) -> GrantIndex:
    index: GrantIndex = {}
    # The modes as a grant lists them -> in display order: one tuple for every grant that holds
    # the same modes (a listing has a handful of combinations for 20,000 grants).
    ordered: Dict[Tuple[str, ...], Tuple[str, ...]] = {}
    for grant in grants:
        listed = tuple(grant.get('mode') or ())
        held = ordered.get(listed)
        if held is None:
            held = ordered[listed] = _ordered(listed)
        file_id = str(grant.get('file_id'))
        address = grant.get('owner_address') or ''
        per_file = index.get(file_id)
        if per_file is None:
            index[file_id] = {address: held}
            continue
        before = per_file.get(address)
        if before is not None and before is not held:
            held = _ordered(before + held)
            held = ordered.setdefault(held, held)
        per_file[address] = held
    return index


def index_session_addresses(sessions: Iterable[Mapping]) -> Dict[str, Set[str]]:
    """auth id -> the client addresses that user has SMB sessions from."""
    addresses: Dict[str, Set[str]] = defaultdict(set)
    for session in sessions:
        user = session.get('user') or {}
        if user.get('auth_id') is not None and session.get('originator'):
            addresses[str(user['auth_id'])].add(session['originator'])
    return addresses


def _ordered(modes: Iterable[str]) -> Tuple[str, ...]:
    return tuple(sorted(set(modes), key=lambda mode: (_MODE_ORDER.get(mode, len(_MODE_ORDER)), mode)))


# What an open does, as its share-mode grant names it, by the words of lockmanager.model.access_mode.
_DOES = {'read': 'API_SHARE_MODE_READ', 'write': 'API_SHARE_MODE_WRITE', 'delete': 'API_SHARE_MODE_DELETE'}
_DOES_ANY = frozenset(_DOES.values())
_NONE: Dict[str, Tuple[str, ...]] = {}
_NO_ADDRESSES: Set[str] = frozenset()  # type: ignore[assignment]


def _nanoseconds(value: object) -> Optional[float]:
    """A session's `time_open`/`time_idle` ({"nanoseconds": "..."}) in seconds; None if absent."""
    if type(value) is dict or isinstance(value, Mapping):
        value = value.get('nanoseconds')
    try:
        return int(str(value)) / 1e9
    except ValueError:
        return None


def share_of(path: str, shares: Sequence[Tuple[str, str]], names: Optional[Iterable[str]] = None) -> str:
    """The share whose folder holds `path` most closely, among `names` (a session's shares) when
    one of those holds it; `shares` is (folder, name), longest folder first."""
    wanted = set(names or ())
    for restrict in (True, False) if wanted else (False,):
        for folder, name in shares:
            if restrict and name not in wanted:
                continue
            if folder == '/' or path == folder or path.startswith(folder.rstrip('/') + '/'):
                return name
    return ''


def index_shares(shares: Iterable[Mapping]) -> List[Tuple[str, str]]:
    pairs = [(str(s.get('fs_path') or ''), str(s.get('share_name') or '')) for s in shares]
    return sorted((p for p in pairs if p[0] and p[1]), key=lambda p: -len(p[0]))


class RowJoiner:
    """Joins one listing's handles with its grants, sessions and shares; user names come from
    `user_name`, host names from `hosts`.

    A handle names no client. Its user's sessions narrow the addresses holding grants on its file;
    when one user holds the file from several clients, each client's share-mode grant says what
    its opens do (read, write, delete), which picks the client of a handle that does just that.
    What is still ambiguous then is one row per client, each with that client's grants. The
    columns of one user and access on one file are worked out once: 20,000 handles are joined in
    well under a second.
    """

    def __init__(
        self,
        share_grants: Iterable[Mapping],
        byte_range_grants: Iterable[Mapping],
        user_name: Callable[[str], str],
        sessions: Optional[Iterable[Mapping]] = None,
        paths: Optional[Mapping[str, str]] = None,
        shares: Optional[Iterable[Mapping]] = None,
        hosts: Optional[Mapping[str, str]] = None,
        listed_at: Optional[float] = None,
    ):
        self.share = index_grants(share_grants)
        self.byte_range = index_grants(byte_range_grants)
        self.user_name = user_name
        sessions = list(sessions) if sessions is not None else None
        self.session_addresses = index_session_addresses(sessions) if sessions is not None else None
        self.sessions = {
            (str((s.get('user') or {}).get('auth_id')), s.get('originator') or ''): s for s in sessions or ()
        }
        self.paths = paths or {}
        self.shares = index_shares(shares or ())
        self.hosts = hosts or {}
        self.listed_at = listed_at if listed_at is not None else time.time()
        self._holders: Dict[Tuple[str, str, str], List[_Holder]] = {}
        self._access: Dict[Tuple[str, ...], str] = {}
        # One object for each text or key many rows show: the rows of a file share its path and
        # its sort key, the rows of a user its auth id.
        self._texts: Dict[str, str] = {}
        self._path_keys: Dict[str, Tuple[object, ...]] = {}
        self._session_facts: Dict[Tuple[str, str], Tuple[Optional[float], Optional[float], Tuple[str, ...]]] = {}
        self._share_of: Dict[Tuple[str, Tuple[str, ...]], str] = {}
        self._share_folders = {folder for folder, _ in self.shares}

    def clients_of(self, file_id: str, auth_id: str, access: str = '') -> Tuple[str, ...]:
        share = self.share.get(file_id, _NONE)
        byte_range = self.byte_range.get(file_id, _NONE)
        if len(share) == 1 and not byte_range:
            # The common case: one client holds the file. Narrowing by sessions or by what the
            # opens do could only fall back to it.
            for client in share:
                return (client,) if client else ()
        candidates = set(share)
        if byte_range:
            candidates.update(byte_range)
        candidates.discard('')
        if self.session_addresses is not None and candidates:
            candidates = (candidates & self.session_addresses.get(auth_id, _NO_ADDRESSES)) or candidates
        if len(candidates) < 2:
            return tuple(candidates)
        if access:
            does = {_DOES[word] for word in access.split('+') if word in _DOES}
            held = {client: set(share.get(client, ())) & _DOES_ANY for client in candidates}
            exact = {client for client in candidates if held[client] == does}
            covering = {client for client in candidates if held[client] >= does}
            candidates = exact or covering or candidates
        return tuple(sorted(candidates, key=address_key))

    def _session(self, auth_id: str, client: str) -> Tuple[Optional[float], Optional[float], Tuple[str, ...]]:
        """(opened, idle seconds, share names) of the user's session from that client, worked out once."""
        key = (auth_id, client)
        facts = self._session_facts.get(key)
        if facts is None:
            session = self.sessions.get(key) if client else None
            if session is None:
                facts = (None, None, ())
            else:
                time_open = _nanoseconds(session.get('time_open'))
                facts = (
                    self.listed_at - time_open if time_open is not None else None,
                    _nanoseconds(session.get('time_idle')),
                    tuple(session.get('share_names') or ()),
                )
            self._session_facts[key] = facts
        return facts

    def _share(self, path: str, names: Tuple[str, ...]) -> str:
        # A path is under a folder exactly when its parent is that folder or under it, so the
        # answer is the same for every file of one folder (a path that is a share's own folder
        # is asked directly).
        if path in self._share_folders:
            return share_of(path, self.shares, names)
        key = (path.rpartition('/')[0], names)
        share = self._share_of.get(key)
        if share is None:
            share = self._share_of[key] = share_of(path, self.shares, names)
        return share

    def _holders_of(self, file_id: str, auth_id: str, access: str, path: str) -> List[_Holder]:
        user = self.user_name(auth_id)
        share = self.share.get(file_id, _NONE)
        byte_range = self.byte_range.get(file_id, _NONE)
        holders = []
        for client in self.clients_of(file_id, auth_id, access) or ('',):
            opened, idle_s, share_names = self._session(auth_id, client)
            holders.append(
                (
                    user,
                    client,
                    share.get(client, ()),
                    byte_range.get(client, ()),
                    self.hosts.get(client, ''),
                    self._share(path, share_names),
                    opened,
                    idle_s,
                )
            )
        return holders

    def _access_mode(self, mask: Iterable[str]) -> str:
        key = tuple(mask)
        mode = self._access.get(key)
        if mode is None:
            mode = self._access[key] = access_mode(key)
        return mode

    def _text(self, text: str) -> str:
        return self._texts.setdefault(text, text)

    def rows_of(self, handle: Mapping) -> List[HandleRow]:
        info = handle.get('handle_info') or {}
        texts = self._texts
        file_id = str(handle.get('file_number', ''))
        file_id = texts.setdefault(file_id, file_id)
        auth_id = str(info.get('owner', ''))
        auth_id = texts.setdefault(auth_id, auth_id)
        access = self._access_mode(info.get('access_mask') or ())
        path = info.get('path') or self.paths.get(file_id) or UNRESOLVED_PATH
        path_key = self._path_keys.get(path)
        if path_key is None:
            path = texts.setdefault(path, path)
            path_key = self._path_keys[path] = natural_key(path)
        else:
            path = texts[path]
        location = str(info.get('location', ''))
        ranges = int(info.get('num_byte_range_locks') or 0)
        key = (file_id, auth_id, access)
        holders = self._holders.get(key)
        if holders is None:
            holders = self._holders[key] = self._holders_of(file_id, auth_id, access, path)
        return [
            HandleRow(
                location,
                file_id,
                path,
                user,
                auth_id,
                client,
                access,
                share_modes,
                ranges,
                byte_range_modes,
                host,
                share,
                opened,
                idle_s,
                path_key,
            )
            for user, client, share_modes, byte_range_modes, host, share, opened, idle_s in holders
        ]

    def rows(self, handles: Iterable[Mapping]) -> List[HandleRow]:
        return [row for handle in handles for row in self.rows_of(handle)]


def session_rows(
    sessions: Iterable[Mapping],
    user_name: Callable[[str], str],
    hosts: Optional[Mapping[str, str]] = None,
    listed_at: Optional[float] = None,
) -> List[SessionRow]:
    """The SMB sessions as rows of the sessions tab and of --sessions."""
    hosts = hosts or {}
    now = listed_at if listed_at is not None else time.time()
    rows = []
    for session in sessions:
        user = session.get('user') or {}
        auth_id = str(user.get('auth_id', ''))
        client = str(session.get('originator') or '')
        time_open = _nanoseconds(session.get('time_open'))
        rows.append(
            SessionRow(
                location=str(session.get('location', '')),
                user=user.get('name') or user_name(auth_id),
                auth_id=auth_id,
                client=client,
                host=hosts.get(client, ''),
                shares=tuple(session.get('share_names') or ()),
                open_handles=int(session.get('num_opens') or 0),
                opened=now - time_open if time_open is not None else None,
                idle_s=_nanoseconds(session.get('time_idle')),
                guest=bool(session.get('is_guest')),
                encrypted=bool(session.get('is_encrypted')),
            )
        )
    return rows
