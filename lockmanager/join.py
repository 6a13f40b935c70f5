"""Rows from the cluster's separate listings, joined the only way they can be: by file id.

A handle names its file and its user but no client; a lock grant names its file and its client but
no user; a session names a user and a client. So a row's client is an address holding a grant on
the handle's file, narrowed to the addresses its user has sessions from whenever that leaves one.
"""

from collections import defaultdict
from typing import Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Set, Tuple

from lockmanager.model import HandleRow, access_mode

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


def index_grants(grants: Iterable[Mapping]) -> GrantIndex:
    modes: Dict[Tuple[str, str], Set[str]] = defaultdict(set)
    for grant in grants:
        modes[(str(grant.get('file_id')), grant.get('owner_address') or '')].update(grant.get('mode') or ())
    index: GrantIndex = defaultdict(dict)
    for (file_id, address), held in modes.items():
        index[file_id][address] = _ordered(held)
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


def _modes_from(grants_by_address: Mapping[str, Tuple[str, ...]], clients: Tuple[str, ...]) -> Tuple[str, ...]:
    if len(clients) == 1:  # the usual case, already in order
        return grants_by_address.get(clients[0], ())
    return _ordered(mode for client in clients for mode in grants_by_address.get(client, ()))


class RowJoiner:
    """Joins one listing's handles with its grants and sessions; user names come from `user_name`.

    Handles of one file (and of one user on it) share their client and lock columns, so those are
    worked out once per file and user: 20,000 handles are joined in well under a second.
    """

    def __init__(
        self,
        share_grants: Iterable[Mapping],
        byte_range_grants: Iterable[Mapping],
        user_name: Callable[[str], str],
        sessions: Optional[Iterable[Mapping]] = None,
        paths: Optional[Mapping[str, str]] = None,
    ):
        self.share = index_grants(share_grants)
        self.byte_range = index_grants(byte_range_grants)
        self.user_name = user_name
        self.session_addresses = index_session_addresses(sessions) if sessions is not None else None
        self.paths = paths or {}
        self._holders: Dict[Tuple[str, str], _Holder] = {}
        self._access: Dict[Tuple[str, ...], str] = {}

    def clients_of(self, file_id: str, auth_id: str) -> Tuple[str, ...]:
        candidates = set(self.share.get(file_id, {})) | set(self.byte_range.get(file_id, {}))
        candidates.discard('')
        if self.session_addresses is not None:
            narrowed = candidates & self.session_addresses.get(auth_id, set())
            candidates = narrowed or candidates
        return tuple(sorted(candidates))

    def _holder(self, file_id: str, auth_id: str) -> '_Holder':
        holder = self._holders.get((file_id, auth_id))
        if holder is None:
            clients = self.clients_of(file_id, auth_id)
            holder = _Holder(
                self.user_name(auth_id),
                clients,
                _modes_from(self.share.get(file_id, {}), clients),
                _modes_from(self.byte_range.get(file_id, {}), clients),
            )
            self._holders[(file_id, auth_id)] = holder
        return holder

    def _access_mode(self, mask: Iterable[str]) -> str:
        key = tuple(mask)
        mode = self._access.get(key)
        if mode is None:
            mode = self._access[key] = access_mode(key)
        return mode

    def row(self, handle: Mapping) -> HandleRow:
        info = handle.get('handle_info') or {}
        file_id = str(handle.get('file_number', ''))
        auth_id = str(info.get('owner', ''))
        holder = self._holder(file_id, auth_id)
        return HandleRow(
            location=str(info.get('location', '')),
            file_id=file_id,
            path=info.get('path') or self.paths.get(file_id) or UNRESOLVED_PATH,
            user=holder.user,
            auth_id=auth_id,
            clients=holder.clients,
            access=self._access_mode(info.get('access_mask') or ()),
            share_modes=holder.share_modes,
            byte_range_locks=int(info.get('num_byte_range_locks') or 0),
            byte_range_modes=holder.byte_range_modes,
        )

    def rows(self, handles: Iterable[Mapping]) -> List[HandleRow]:
        return [self.row(handle) for handle in handles]


class _Holder(NamedTuple):
    """What a row says about who holds the file: the same for each handle of one user on it."""

    user: str
    clients: Tuple[str, ...]
    share_modes: Tuple[str, ...]
    byte_range_modes: Tuple[str, ...]
