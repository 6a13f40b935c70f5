"""Who may run what: the caller's identity comes from the socket itself (SO_PEERCRED), never
from anything the client says. Root may run every command; members of [Service] read_only_group
may run the read-only ones; everyone else is refused with a line naming their UID."""

import grp
import pwd
import socket
import struct
from dataclasses import dataclass
from typing import FrozenSet, List, Optional

from common.config import ConfigError
from pytarchive.config import Config

# May also be run by members of [Service] read_only_group; every other command needs root.
READ_ONLY = frozenset({'queue', 'summary', 'deleteable', 'task', 'find', 'ls', 'history'})
_UCRED = struct.Struct('3i')  # struct ucred: pid, uid, gid
# Linux 4.13+: the peer's supplementary groups as an array of gid_t; Python has no constant for it.
SO_PEERGROUPS = getattr(socket, 'SO_PEERGROUPS', 59)
_GROUPS_BUFFER = 1024  # Python's limit for getsockopt: 256 groups; more (ERANGE) uses the database


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int
    groups: FrozenSet[int]  # primary and supplementary


def peer_of(connection: socket.socket) -> Peer:
    pid, uid, gid = _UCRED.unpack(connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    try:
        raw = connection.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, _GROUPS_BUFFER)
        groups = set(struct.unpack(f'{len(raw) // 4}I', raw[: len(raw) // 4 * 4]))
    except OSError:  # an older kernel, or very many groups: the group database is the next best answer
        groups = set(_groups_from_database(uid))
    return Peer(pid, uid, gid, frozenset(groups | {gid}))


def _groups_from_database(uid: int) -> List[int]:
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return []
    return [group.gr_gid for group in grp.getgrall() if name in group.gr_mem]


def resolve_group(config: Config) -> Optional[int]:
    """The read-only group's gid (a name or a number in the config); None when not set."""
    name = config.service.read_only_group
    if not name:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise ConfigError(f'{config.path}: [Service] read_only_group: no group named {name!r} on this host') from None


class Access:
    def __init__(self, read_only_gid: Optional[int], read_only_name: str = ''):
        self.read_only_gid = read_only_gid
        self.read_only_name = read_only_name or str(read_only_gid)

    def refusal(self, peer: Peer, command: str) -> Optional[str]:
        """None when `peer` may run `command`, else the one line to send back."""
        if peer.uid == 0:
            return None
        in_group = self.read_only_gid is not None and self.read_only_gid in peer.groups
        if in_group and command in READ_ONLY:
            return None
        allowed = 'only root may use pytarchive'
        if self.read_only_gid is not None:
            allowed = (
                f'only root may run {command!r}; members of group {self.read_only_name} may run '
                f'{", ".join(sorted(READ_ONLY))}'
            )
        return f'permission denied for UID {peer.uid}: {allowed}'
