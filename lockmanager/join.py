"""Rows from the cluster's separate listings, joined the only way they can be: by file id.

A handle names its file and its user but no client; a lock grant names its file and its client but
no user; a session names a user and a client. So a row's client is an address holding a grant on
the handle's file, narrowed to the addresses its user has sessions from whenever that leaves one.
"""

from collections import defaultdict
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from lockmanager.model import HandleRow, access_mode

UNRESOLVED_PATH = '(path unknown)'

# The order the modes are shown in, whatever order the cluster lists them in.
_MODE_ORDER = {mode: n for n, mode in enumerate((
    'API_SHARE_MODE_READ', 'API_SHARE_MODE_WRITE', 'API_SHARE_MODE_DELETE',
    'API_SHARE_MODE_EXCLUDE_READ', 'API_SHARE_MODE_EXCLUDE_WRITE', 'API_SHARE_MODE_EXCLUDE_DELETE',
    'API_BYTE_RANGE_EXCLUSIVE', 'API_BYTE_RANGE_SHARED', 'API_BYTE_RANGE_READ_OP', 'API_BYTE_RANGE_WRITE_OP',
))}

# file id -> client address -> the modes its grants on that file hold
GrantIndex = Dict[str, Dict[str, Set[str]]]


def index_grants(grants: Iterable[Mapping]) -> GrantIndex:
    index: GrantIndex = defaultdict(dict)
    for grant in grants:
        modes = index[str(grant.get('file_id'))].setdefault(grant.get('owner_address') or '', set())
        modes.update(grant.get('mode') or ())
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


def _modes_from(grants_by_address: Mapping[str, Set[str]], clients: Iterable[str]) -> Tuple[str, ...]:
    return _ordered(mode for client in clients for mode in grants_by_address.get(client, ()))


class RowJoiner:
    """Joins one listing's handles with its grants and sessions; user names come from `user_name`."""

    def __init__(self, share_grants: Iterable[Mapping], byte_range_grants: Iterable[Mapping],
                 user_name: Callable[[str], str], sessions: Optional[Iterable[Mapping]] = None,
                 paths: Optional[Mapping[str, str]] = None):
        self.share = index_grants(share_grants)
        self.byte_range = index_grants(byte_range_grants)
        self.user_name = user_name
        self.session_addresses = index_session_addresses(sessions) if sessions is not None else None
        self.paths = paths or {}

    def clients_of(self, file_id: str, auth_id: str) -> Tuple[str, ...]:
        candidates = set(self.share.get(file_id, {})) | set(self.byte_range.get(file_id, {}))
        candidates.discard('')
        if self.session_addresses is not None:
            narrowed = candidates & self.session_addresses.get(auth_id, set())
            candidates = narrowed or candidates
        return tuple(sorted(candidates))

    def row(self, handle: Mapping) -> HandleRow:
        info = handle.get('handle_info') or {}
        file_id = str(handle.get('file_number', ''))
        auth_id = str(info.get('owner', ''))
        clients = self.clients_of(file_id, auth_id)
        return HandleRow(
            location=str(info.get('location', '')),
            file_id=file_id,
            path=info.get('path') or self.paths.get(file_id) or UNRESOLVED_PATH,
            user=self.user_name(auth_id),
            auth_id=auth_id,
            clients=clients,
            access=access_mode(info.get('access_mask') or ()),
            share_modes=_modes_from(self.share.get(file_id, {}), clients),
            byte_range_locks=int(info.get('num_byte_range_locks') or 0),
            byte_range_modes=_modes_from(self.byte_range.get(file_id, {}), clients),
        )

    def rows(self, handles: Iterable[Mapping]) -> List[HandleRow]:
        return [self.row(handle) for handle in handles]
