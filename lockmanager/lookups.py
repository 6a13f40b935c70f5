"""Ids turned into what people read, asked of the cluster once per id: user names for the auth
ids that handles carry, and paths for file ids a listing left without one."""

import logging
from typing import Callable, Dict, Iterable, List, Mapping, Optional

from qumulo.lib.request import RequestError

log = logging.getLogger(__name__)


class UserNames:
    """auth id -> user name through `POST /v1/identity/find`, cached for the life of the process.

    Without PRIVILEGE_IDENTITY_READ (a 403) names stay auth ids: a list without names beats no
    list. An id the cluster does not know (a deleted user) also shows as itself.
    """

    def __init__(self, find_identity: Callable[..., Mapping]):
        self._find = find_identity
        self._names: Dict[str, str] = {}
        self.enabled = True

    def disable(self) -> None:
        self.enabled = False

    def learn_from_sessions(self, sessions: Iterable[Mapping]) -> None:
        """SMB sessions carry their user's name: every handle's owner has one, so a listing that
        reads sessions asks identity/find only for owners it did not see there."""
        for session in sessions:
            user = session.get('user') or {}
            if user.get('auth_id') is not None and user.get('name'):
                self._names[str(user['auth_id'])] = str(user['name'])

    def __call__(self, auth_id: str) -> str:
        name = self._names.get(auth_id)
        if name is not None:
            return name
        if not self.enabled or not auth_id:
            return auth_id
        try:
            identity = self._find(auth_id=auth_id)
        except RequestError as exc:
            if exc.status_code == 403:
                log.debug('user names unavailable (%s); showing auth ids', exc.description)
                self.enabled = False
                return auth_id
            if exc.status_code not in (400, 404):
                raise
            identity = {}
        name = str(identity.get('name') or auth_id)
        self._names[auth_id] = name
        return name


class HostNames:
    """Client address -> host name through the cluster's DNS (`POST /v1/dns/resolve-ips-to-names`),
    the new addresses of a listing asked in one call, the answers cached for the life of the
    process. An address the DNS does not know (NOT_FOUND) is remembered as nameless; one whose
    lookup failed (ERROR, TIMEOUT) is asked again at the next listing. A cluster that refuses or
    lacks the call leaves every name empty: a list without host names beats no list.
    """

    def __init__(self, resolve: Callable[[List[str]], List[Mapping]]):
        self._resolve = resolve
        self._names: Dict[str, str] = {}
        self.enabled = True

    def lookup(self, addresses: Iterable[str]) -> Dict[str, str]:
        wanted = {address for address in addresses if address}
        new = sorted(wanted - set(self._names))
        if new and self.enabled:
            try:
                answers = self._resolve(new)
            except RequestError as exc:
                if exc.status_code not in (400, 403, 404, 501):
                    raise
                log.debug('host names unavailable (%s)', exc.description)
                self.enabled = False
                answers = []
            for answer in answers if isinstance(answers, list) else ():
                if isinstance(answer, Mapping) and answer.get('result') in ('OK', 'NOT_FOUND'):
                    self._names[str(answer.get('ip_address'))] = str(answer.get('hostname') or '')
        return {address: self._names.get(address, '') for address in wanted}


class FilePaths:
    """file id -> path, in batches, cached while the file is open.

    The handle listing resolves paths itself (resolve_paths=true); this fills the ones it left
    empty. A file may go away at any moment, and a refresh must not fail for it: the ids are asked
    of `POST /v1/files/try-resolve`, which answers the ids it can resolve and lists the others
    apart. A cluster without it (a 404 that is not about a file, or a 405) is asked through
    `POST /v1/files/resolve` instead, which may fail a whole batch (404) for one id that is gone:
    that batch is asked again one id at a time, and an id that still fails stays without a path.
    Ids of files no longer open are forgotten: a new file may get a freed id.
    """

    def __init__(
        self,
        resolve: Callable[[List[str]], Iterable[Mapping]],
        try_resolve: Optional[Callable[[List[str]], Mapping]] = None,
        batch: int = 1000,
    ):
        self._resolve = resolve
        self._try_resolve = try_resolve
        self.batch = batch
        self._paths: Dict[str, str] = {}

    def lookup(self, wanted: Iterable[str], open_ids: Iterable[str]) -> Dict[str, str]:
        """Paths of `wanted` that the cluster knows; `open_ids` are all ids still open."""
        missing = sorted(set(wanted) - set(self._paths))
        for start in range(0, len(missing), self.batch):
            for entry in self._ask(missing[start : start + self.batch]):
                if entry.get('path'):
                    self._paths[str(entry['id'])] = entry['path']
        for file_id in set(self._paths).difference(open_ids):
            del self._paths[file_id]
        return dict(self._paths)

    def _ask(self, ids: List[str]) -> List[Mapping]:
        if self._try_resolve is not None:
            try:
                return list(self._try_resolve(ids)['resolved'])
            except RequestError as exc:
                if not _no_such_endpoint(exc):
                    raise
                log.debug('the cluster has no try-resolve (%s); resolving through resolve', exc.description)
                self._try_resolve = None
        try:
            return list(self._resolve(ids))
        except RequestError as exc:
            if exc.status_code != 404:
                raise
        if len(ids) == 1:
            log.debug('file id %s is gone; its path stays unknown', ids[0])
            return []
        return [entry for file_id in ids for entry in self._ask([file_id])]


def _no_such_endpoint(exc: RequestError) -> bool:
    """A cluster that does not know the call (older than it), not one that lacks a file."""
    if exc.status_code in (405, 501):
        return True
    return exc.status_code == 404 and not str(exc.error_class or '').startswith('fs_')
