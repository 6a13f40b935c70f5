"""The change-notify stream, read on its own connection with a line reader that hands every event
over the moment its line arrives (the SDK's ChangesIterator can hold an event back until more
bytes arrive)."""

import json
import logging
import os
import socket
import ssl
import threading
import warnings
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple
from urllib.parse import quote

import requests
import urllib3

from common.auth import retry_after_s
from common.config import ClusterConfig
from common.errors import describe
from .clock import ClusterClock

log = logging.getLogger(__name__)

# A cluster sends a keepalive every few seconds on an idle stream (at least every 30 s): a stream
# that sends nothing at all for this long is taken for dead, closed and replaced by a new one. A
# connection can hang without being closed (a node, a proxy or a firewall that drops it silently);
# only the silence tells. QFS_FILELOCK_STREAM_SILENCE_S changes it (the tests shorten it).
STREAM_SILENCE_S = 60.0
SILENCE_ENV = 'QFS_FILELOCK_STREAM_SILENCE_S'
# The stream's answer (status and headers) must be complete by then, however slowly it trickles.
OPEN_DEADLINE_S = 30.0
# A cluster hands a batch of changes over as one line, a few hundred KiB; a line without end is a
# broken or hostile server, which must not take the watcher's memory.
MAX_LINE_BYTES = 256 * 1024 * 1024
# The comment a cluster ends a stream with when it cut off a watcher that fell behind.
MISSED_EVENTS = b': fs_watcher_missed_events_error'


class StreamError(Exception):
    """The cluster refused the notify request: its status, error_class and Retry-After."""

    def __init__(
        self, status: int, message: str, error_class: Optional[str] = None, retry_after: Optional[float] = None
    ):
        super().__init__(message)
        self.status = status
        self.error_class = error_class
        self.retry_after = retry_after


class StreamEnded(Exception):
    """The stream stopped: the cluster ended it, the connection dropped, or it went silent.
    `unavailable`: the cluster could not be reached at all (part of an outage); `silent`: it sent
    nothing, not even a keepalive, for the silence threshold."""

    def __init__(self, message: str, unavailable: bool = False, silent: bool = False):
        super().__init__(message)
        self.unavailable = unavailable
        self.silent = silent


def silence_threshold() -> float:
    """Seconds a stream may send nothing before it is taken for dead: STREAM_SILENCE_S, or the
    environment's QFS_FILELOCK_STREAM_SILENCE_S. Raises ValueError for a value that is no number
    of seconds above 0."""
    text = os.environ.get(SILENCE_ENV, '').strip()
    if not text:
        return STREAM_SILENCE_S
    seconds = float(text)
    if not 0 < seconds <= 86400:
        raise ValueError(f'{SILENCE_ENV}={text}: give seconds above 0 and at most 86400')
    return seconds


def base_url(config: ClusterConfig) -> str:
    host = f'[{config.host}]' if ':' in config.host else config.host
    return f'https://{host}:{config.port}'


class ChangeStream:
    def __init__(
        self,
        config: ClusterConfig,
        bearer_token: str,
        directory_id: str,
        recursive: bool,
        types: Iterable[str],
        clock: Optional[ClusterClock] = None,
        silence_s: Optional[float] = None,
    ):
        self._silence_s = silence_s or silence_threshold()
        # Called for every keepalive and event line: the stream is alive (the watchdog and the
        # metrics watch it). The watcher sets it; it must be quick and must not raise.
        self.on_alive: Callable[[], None] = _nothing
        self._url = (
            f'{base_url(config)}/v1/files/{quote(str(directory_id), safe="")}/notify'
            f'?recursive={"true" if recursive else "false"}'
        )
        if types:
            self._url += '&filter=' + ','.join(sorted(types))
        self._headers = {'Authorization': f'Bearer {bearer_token}'}
        # The SDK does not verify the cluster's certificate; with CA_BUNDLE set, this verifies too.
        self._verify = config.ca_bundle or False
        self._clock = clock
        self._response: Optional[requests.Response] = None

    def __enter__(self) -> 'ChangeStream':
        if self._response is not None:  # opened already (the watcher's check at start): go on reading it
            return self
        watchdog = _OpenDeadline()
        try:
            self._response = self._open(watchdog)
        finally:
            watchdog.cancel()
        return self

    def _open(self, watchdog: '_OpenDeadline') -> requests.Response:
        with warnings.catch_warnings(), watchdog.session() as session:
            # Not verifying is the SDK's default; the tool says so once at start instead.
            warnings.simplefilter('ignore', urllib3.exceptions.InsecureRequestWarning)
            try:
                response = session.get(
                    self._url, headers=self._headers, verify=self._verify, stream=True, timeout=(15, self._silence_s)
                )
            except requests.RequestException as e:
                if watchdog.expired:
                    response = None
                elif isinstance(_root_cause(e), ssl.SSLCertVerificationError):
                    raise _root_cause(e) from None  # not an outage: the certificate is refused
                else:
                    raise StreamEnded(
                        f'cannot open the notify stream: {describe(_root_cause(e))}', unavailable=True
                    ) from None
        if watchdog.expired:  # cut mid-headers: what came may even parse as an answer
            if response is not None:
                response.close()
            raise StreamEnded(f'the notify request was not answered within {OPEN_DEADLINE_S:g} s', unavailable=True)
        if response.status_code != 200:
            error_class, message = _error_description(response)  # within the deadline too
            response.close()
            raise StreamError(
                response.status_code, message, error_class, retry_after_s(response.headers.get('Retry-After'))
            )
        if response.headers.get('Content-Type') != 'text/event-source':
            response.close()
            raise StreamError(
                0,
                f'the cluster answered the notify request with '
                f'{response.headers.get("Content-Type")!r}, not an event stream',
            )
        if self._clock:
            self._clock.observe(response.headers.get('Date'))
        return response

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()

    def batches(self) -> Iterator[Any]:
        """Yields each `data:` line's JSON value as it is (judging its shape is the caller's);
        raises StreamEnded when the stream stops."""
        try:
            for line in self._lines():
                if line.startswith(b'data: '):
                    try:
                        value = json.loads(line[6:])
                    except ValueError:
                        raise StreamEnded(f'malformed event line from the cluster: {line[:80]!r}')
                    self.on_alive()
                    yield value
                elif line.startswith(b': keepalive'):
                    self.on_alive()
                elif line.startswith(MISSED_EVENTS):
                    # Events were dropped for this watcher; the stream ends and the next notify
                    # request is refused once with the same error class: reconnect and rescan.
                    raise StreamEnded(
                        'the cluster cut the notify stream off: the watcher fell behind and change events were '
                        'lost (fs_watcher_missed_events_error)'
                    )
                elif line.startswith(b': '):
                    log.debug('notify: %s', line[2:].decode(errors='replace'))
        except (requests.RequestException, OSError, urllib3.exceptions.HTTPError) as e:
            if _timed_out(e):
                # The read timeout is the silence threshold: no byte came for that long.
                raise StreamEnded(
                    f'the notify stream sent nothing for {self._silence_s:g} s, not even a keepalive: '
                    f'taking the connection for dead',
                    silent=True,
                )
            raise StreamEnded(f'the notify connection dropped ({type(e).__name__})')
        raise StreamEnded('the cluster ended the notify stream')

    def _lines(self) -> Iterator[bytes]:
        # Each chunk is searched once and a line joined once: linear in the bytes received, where
        # appending to one buffer and splitting it again at every chunk would be quadratic.
        pieces, size = [], 0
        for chunk in self._response.iter_content(chunk_size=None):
            start = 0
            while True:
                end = chunk.find(b'\n', start)
                if end < 0:
                    break
                pieces.append(chunk[start:end])
                line = b''.join(pieces)
                pieces, size = [], 0
                yield line
                start = end + 1
            if start < len(chunk):
                pieces.append(chunk[start:])
                size += len(chunk) - start
                if size > MAX_LINE_BYTES:
                    raise StreamEnded(f'the cluster sent an event line longer than {MAX_LINE_BYTES // 2**20} MiB')


class _OpenDeadline:
    """Cuts the stream's connection if its answer is not complete within OPEN_DEADLINE_S: the read
    timeout bounds each read, not an answer trickled a byte at a time."""

    def __init__(self) -> None:
        self._sockets: List[socket.socket] = []
        self.expired = False
        self._timer = threading.Timer(OPEN_DEADLINE_S, self._expire)
        self._timer.daemon = True

    def session(self) -> requests.Session:
        """A requests Session whose connections tell this watchdog their socket."""
        watchdog = self

        class Connection(urllib3.connection.HTTPSConnection):
            def connect(self) -> None:
                super().connect()
                watchdog._sockets.append(self.sock)

        class Pool(urllib3.HTTPSConnectionPool):
            ConnectionCls = Connection

        adapter = requests.adapters.HTTPAdapter()
        adapter.poolmanager.pool_classes_by_scheme = dict(adapter.poolmanager.pool_classes_by_scheme, https=Pool)
        session = requests.Session()
        session.mount('https://', adapter)
        self._timer.start()
        return session

    def _expire(self) -> None:
        self.expired = True
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


def _nothing() -> None:
    pass


def _timed_out(exc: BaseException) -> bool:
    """A read that timed out, under requests' and urllib3's wrappers (over TLS the innermost
    error is an SSLError saying so, wrapped in urllib3's ReadTimeoutError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError)):
            return True
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            inner = next((a for a in getattr(exc, 'args', ()) if isinstance(a, BaseException)), None)
        exc = inner
    return False


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception under requests' and urllib3's wrappers (refused, reset, DNS...)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__ or getattr(exc, 'reason', None)
        if not isinstance(inner, BaseException):
            args = [a for a in getattr(exc, 'args', ()) if isinstance(a, BaseException)]
            inner = args[0] if args else None
        if inner is None:
            break
        exc = inner
    return exc


def _error_description(response: requests.Response) -> Tuple[Optional[str], str]:
    """(error_class, one line) from an error answer, whatever its body holds."""
    try:
        # Only the start of it: an error answer is small, a hostile one may never end.
        body = json.loads(response.raw.read(64 * 1024, decode_content=True))
    except (ValueError, OSError, requests.RequestException, urllib3.exceptions.HTTPError):
        body = None
    if not isinstance(body, dict):
        return None, f'HTTP {response.status_code}'
    error_class = body.get('error_class')
    error_class = error_class if isinstance(error_class, str) else None
    text = f'{error_class or "error"}: {body.get("description", "")}'
    return error_class, ' '.join(text.split())
