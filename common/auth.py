"""A logged-in Qumulo SDK client that survives session expiry and can verify the certificate.

Login sessions end after about ten hours (or when an administrator revokes them), while the watcher
runs for weeks. Every SDK call, including PagingIterator's later pages and raw client.request(),
goes through Connection.send_request, so re-logging in there covers all of them at once. The same
place bounds every reply (size and overall time, whatever the server does), retries a request
once on a fresh connection when the kept-alive one turns out to have died while idle, and hands
a 429's or 503's Retry-After to the caller.
"""

import email.utils
import http.client
import io
import logging
import socket
import ssl
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Optional

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
from common.errors import AUTH, PRIVILEGE, BadReply, ToolError, describe, is_transient, translated
from common.logs import register_secret

log = logging.getLogger(__name__)

LOGIN_PATH = '/v1/session/login'
# A page of 1,000 SMB handles is about 1 MiB: far more than this is a broken or hostile server,
# which must not be able to take the tool's memory.
MAX_REPLY_BYTES = 64 * 1024 * 1024
# The socket timeout bounds each read, not a reply trickled a byte at a time; this bounds the call.
CALL_DEADLINE_S = 60.0
# A Retry-After beyond this is not honoured as given (a hostile server could park us for ever).
MAX_RETRY_AFTER_S = 600.0
# A command run once (a report, a listing, a close) tries a call this many more times when the
# cluster is busy or briefly away, waiting 1, 2, 4 s (or its Retry-After, up to RETRY_WAIT_MAX_S).
# A long-running watcher passes 0: it rides out outages itself and logs each once.
ONE_SHOT_RETRIES = 3
RETRY_WAIT_MAX_S = 30.0
# 429 and 503 say the cluster did not act on the request: any call may be sent again. Other 5xx
# and network failures may come after the cluster acted, so only reads are sent again for them.
REFUSED_UNDONE = (429, 503)
# What a kept-alive connection that died while idle looks like on the next request.
STALE_CONNECTION_ERRORS = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    http.client.RemoteDisconnected,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


class _BoundedReader(io.RawIOBase):
    """The socket as a reply is read from it: at most `limit` bytes, none after `deadline`."""

    def __init__(self, sock: socket.socket, deadline: float, limit: int, timeout: Optional[float]):
        super().__init__()
        # The socket's own raw file: it keeps the socket open until the reply is read, as
        # http.client expects when it closes the connection of a reply that ends with it.
        self._raw = sock.makefile('rb', buffering=0)
        self._sock, self._deadline, self._left, self._timeout = sock, deadline, limit, timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise BadReply(f'no complete reply within {CALL_DEADLINE_S:g} s')
        self._sock.settimeout(min(remaining, self._timeout) if self._timeout else remaining)
        try:
            count = self._raw.readinto(buffer)
        except TimeoutError:
            if time.monotonic() >= self._deadline:
                raise BadReply(f'no complete reply within {CALL_DEADLINE_S:g} s') from None
            raise
        self._left -= count or 0
        if self._left < 0:
            raise BadReply(f'a reply larger than {MAX_REPLY_BYTES // 2**20} MiB')
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


class _BoundedSocket:
    """What http.client.HTTPResponse is given instead of the socket: its makefile is bounded."""

    def __init__(self, sock: socket.socket, deadline: float, timeout: Optional[float]):
        self._sock, self._deadline, self._timeout = sock, deadline, timeout

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_BoundedReader(self._sock, self._deadline, MAX_REPLY_BYTES, self._timeout))


def retry_after_s(value: Optional[str]) -> Optional[float]:
    """Seconds from a Retry-After header (a number of seconds or an HTTP date), bounded."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


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
    """A Connection that answers one 401 by logging in again and retrying the request once, and
    whose replies are bounded in size and time."""

    def __init__(self, *args: Any, relogin: Optional[Callable[[Connection], None]], retries: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._relogin = relogin
        self._retries = retries
        self._deadline = 0.0
        self._response: Optional[http.client.HTTPResponse] = None

    def get_or_create_connection(self) -> Any:
        conn = super().get_or_create_connection()
        conn.response_class = self._bounded_response
        return conn

    def _bounded_response(self, sock: socket.socket, *args: Any, **kwargs: Any) -> http.client.HTTPResponse:
        self._response = http.client.HTTPResponse(_BoundedSocket(sock, self._deadline, self.timeout), *args, **kwargs)
        return self._response

    def _send_once(self, method: str, uri: Any, *args: Any, **kwargs: Any) -> Any:
        self._deadline = time.monotonic() + CALL_DEADLINE_S
        self._response = None
        try:
            return super().send_request(method, uri, *args, **kwargs)
        except RequestError as exc:
            response = self._response
            exc.retry_after = retry_after_s(response.getheader('Retry-After')) if response else None
            raise
        except Exception:
            # Cut off mid-reply (too large, too slow, a timeout): the rest of the reply may still
            # be on the way, so the connection cannot carry another request.
            self.close()
            raise

    def _send_fresh(self, method: str, uri: Any, *args: Any, **kwargs: Any) -> Any:
        # A server or proxy may close a kept-alive connection while it is idle; the next request
        # on it then fails before any answer. That request never reached the server, so it is
        # sent once more on a new connection (every call these tools make may be repeated).
        reused = self.conn is not None
        try:
            return self._send_once(method, uri, *args, **kwargs)
        except STALE_CONNECTION_ERRORS as exc:
            self.close()
            if not reused:
                raise
            log.debug('the kept-alive connection had died (%s); sending again on a new one', type(exc).__name__)
        return self._send_once(method, uri, *args, **kwargs)

    def send_request(self, method: str, uri: Any, *args: Any, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                return self._send_logged_in(method, uri, *args, **kwargs)
            except Exception as exc:
                wait = self._retry_wait(method, exc, attempt)
                if wait is None:
                    raise
                log.warning('%s %s: %s; trying again in %.0f s', method, str(uri).split('?', 1)[0], describe(exc), wait)
                time.sleep(wait)
                attempt += 1

    def _retry_wait(self, method: str, exc: BaseException, attempt: int) -> Optional[float]:
        """Seconds to wait before sending the request again; None: do not."""
        if attempt >= self._retries or isinstance(exc, BadReply) or not is_transient(exc):
            return None
        refused = isinstance(exc, RequestError) and exc.status_code in REFUSED_UNDONE
        if method != 'GET' and not refused:
            return None
        given = getattr(exc, 'retry_after', None)
        return min(given if given is not None else 2.0**attempt, RETRY_WAIT_MAX_S)

    def _send_logged_in(self, method: str, uri: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._send_fresh(method, uri, *args, **kwargs)
        except RequestError as exc:
            # uri may be a UriBuilder (paging); a 401 on the login itself means bad credentials.
            path = str(uri).split('?', 1)[0]
            if exc.status_code != 401 or self._relogin is None or path.endswith(LOGIN_PATH):
                raise
        log.info('the cluster rejected the session token; logging in again')
        self._relogin(self)
        return self._send_fresh(method, uri, *args, **kwargs)


class Client(RestClient):
    """RestClient bound to a ClusterConfig: re-login on 401, optional certificate verification."""

    def __init__(
        self, config: ClusterConfig, timeout: Optional[int] = 30, user_agent: Optional[str] = None, retries: int = 0
    ):
        # Set before RestClient.__init__, which already builds the connection via conninfo.
        self.config = config
        self.retries = retries
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
                retries=self.retries,
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
        other = Client(self.config, self.timeout, self.user_agent, self.retries)
        if self.credentials is not None:
            other.credentials = self.credentials
        return other


def distinct_pages(pages: Iterable[Any], what: str) -> Iterator[Any]:
    """The pages of a paged listing, refusing a server that sends a page link it sent before:
    following it would loop for ever."""
    seen = set()
    for page in pages:
        link = (page.get('paging') or {}).get('next') if isinstance(page, dict) else None
        if link:
            if link in seen:
                raise BadReply(f'{what}: the cluster sent the page link {link[:100]} twice (a paging loop)')
            seen.add(link)
        yield page


def connect(
    config: ClusterConfig, timeout: Optional[int] = 30, user_agent: Optional[str] = None, retries: int = 0
) -> Client:
    """Return a logged-in Client; raise ToolError (or ConfigError) with a one-line reason.
    retries: how many more times a call is tried on a transient fault (ONE_SHOT_RETRIES for a
    command run once; 0 where the caller rides out outages itself)."""
    register_secret(config.access_token)  # the password is redacted where it stands (common/logs.py)
    client = Client(config, timeout, user_agent, retries)
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
