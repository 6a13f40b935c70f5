"""User names for the auth ids that SMB handles carry, asked of the cluster once per id."""

import logging
from typing import Callable, Dict, Mapping

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

    def __len__(self) -> int:
        return len(self._names)
