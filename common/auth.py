"""A logged-in Qumulo SDK client that survives session expiry and can verify the certificate.

Login sessions end after about ten hours (or when an administrator revokes them), while the watcher
runs for weeks. Every SDK call, including PagingIterator's later pages and raw client.request(),
goes through Connection.send_request, so re-logging in there covers all of them at once.
"""

import logging
import ssl
from typing import Any, Callable, Dict, Iterable, Optional

import qumulo.rest.auth as rest_auth
from qumulo.lib.auth import Credentials
from qumulo.lib.request import (
    Connection,
    HTTPSConnectionWithSocketOptions,
    RealConnectionFactory,
    RequestError,
)
from qumulo.rest_client import RestClient

from common.config import ClusterConfig, ConfigError
from common.errors import AUTH, PRIVILEGE, ToolError, translated
from common.logs import register_secret

log = logging.getLogger(__name__)

LOGIN_PATH = '/v1/session/login'


class _VerifyingConnectionFactory(RealConnectionFactory):
    """Like the SDK's factory, but verifies the cluster certificate against a CA bundle."""

    def __init__(self, host: str, port: int, timeout: Optional[int], context: ssl.SSLContext):
        super().__init__(host, port, timeout)
        self._context = context

    def get_connection(self, source_port: Optional[int] = None) -> HTTPSConnectionWithSocketOptions:
        kwargs: Dict[str, Any] = {'context': self._context, 'timeout': self.timeout()}
        if source_port is not None:
            kwargs['source_address'] = (self.host, source_port)
        return HTTPSConnectionWithSocketOptions(self.host, self.port, **kwargs)


def _verifying_context(config: ClusterConfig) -> ssl.SSLContext:
    # create_default_context: CERT_REQUIRED and check_hostname, so the certificate must name
    # API_HOST (the SDK passes the host as server_hostname when wrapping the socket).
    try:
        return ssl.create_default_context(cafile=config.ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f'{config.path}: CA_BUNDLE {config.ca_bundle} is not a usable PEM bundle: '
            f'{getattr(exc, "reason", None) or exc}'
        ) from None


class _ReloginConnection(Connection):
    """A Connection that answers one 401 by logging in again and retrying the request once."""

    def __init__(self, *args: Any, relogin: Optional[Callable[[Connection], None]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._relogin = relogin

    def send_request(self, method: str, uri: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().send_request(method, uri, *args, **kwargs)
        except RequestError as exc:
            # uri may be a UriBuilder (paging); a 401 on the login itself means bad credentials.
            path = str(uri).split('?', 1)[0]
            if exc.status_code != 401 or self._relogin is None or path.endswith(LOGIN_PATH):
                raise
        log.info('the cluster rejected the session token; logging in again')
        self._relogin(self)
        return super().send_request(method, uri, *args, **kwargs)


class Client(RestClient):
    """RestClient bound to a ClusterConfig: re-login on 401, optional certificate verification."""

    def __init__(self, config: ClusterConfig, timeout: Optional[int] = 30, user_agent: Optional[str] = None):
        # Set before RestClient.__init__, which already builds the connection via conninfo.
        self.config = config
        super().__init__(config.host, config.port, timeout=timeout, user_agent=user_agent)

    @property
    def conninfo(self) -> Connection:
        if self._conninfo is None:
            can_relogin = bool(self.config.username and self.config.password)
            conn = _ReloginConnection(
                host=self.host,
                port=self.port,
                credentials=self._credentials,
                timeout=self.timeout,
                user_agent=self.user_agent,
                relogin=self._login_on if can_relogin else None,
            )
            # The SDK binds a privileged source port when root talks to localhost (a path meant
            # for processes on a cluster node); reconnecting then fails with EADDRINUSE. These
            # tools always log in with credentials, so plain connections are all they need.
            conn.backdoor = False
            if self.config.ca_bundle:
                conn.connection_factory = _VerifyingConnectionFactory(
                    conn.host, conn.port, self.timeout, _verifying_context(self.config)
                )
            self._conninfo = conn
        return self._conninfo

    def _login_on(self, conn: Connection) -> None:
        # Log in over the same connection, bypassing the SDK's retry wrapper (which would close
        # the connection on failure), then update conninfo and _credentials together.
        response = rest_auth.login(conn, None, self.config.username, self.config.password)
        self.credentials = Credentials.from_login_response(response.data)
        register_secret(self.credentials.bearer_token)

    def login(self, username: str, password: str) -> Credentials:
        credentials = super().login(username, password)
        register_secret(credentials.bearer_token)
        return credentials

    def clone(self) -> 'Client':
        """A second client (e.g. for a notify stream) with the same settings and session."""
        other = Client(self.config, self.timeout, self.user_agent)
        if self.credentials is not None:
            other.credentials = self.credentials
        return other


def connect(config: ClusterConfig, timeout: Optional[int] = 30, user_agent: Optional[str] = None) -> Client:
    """Return a logged-in Client; raise ToolError (or ConfigError) with a one-line reason."""
    register_secret(config.access_token)  # the password is redacted where it stands (common/logs.py)
    client = Client(config, timeout, user_agent)
    try:
        with translated(config.host, config.port):
            if config.access_token:
                # An access token needs no login; who-am-i proves the cluster accepts it.
                client.credentials = Credentials(config.access_token)
                client.auth.who_am_i()
            else:
                client.login(config.username, config.password)
    except ToolError as exc:
        if exc.exit_code == AUTH:
            keys = 'ACCESS_TOKEN' if config.access_token else f'USERNAME ({config.username}) and PASSWORD'
            raise ToolError(f'{exc.message}; check {keys} in {config.path}', AUTH) from exc
        raise
    log.debug('logged in to %s:%s', config.host, config.port)
    return client


def who_am_i(client: RestClient) -> Dict[str, Any]:
    """The logged-in user: `id`, `name`, `privileges` (PRIVILEGE_* names), ..."""
    with translated(client.host, client.port):
        return client.auth.who_am_i()


def require_privileges(client: RestClient, names: Iterable[str]) -> None:
    """Fail early, before any change is attempted, if the user lacks one of `names`."""
    me = who_am_i(client)
    granted = set(me.get('privileges') or ())
    missing = [name for name in names if name not in granted]
    if missing:
        raise ToolError(
            f'user {me.get("name", "?")} lacks the privilege {", ".join(missing)}; '
            f'ask a cluster administrator to grant it through an RBAC role',
            PRIVILEGE,
        )
