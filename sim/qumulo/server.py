"""HTTP plumbing: TLS, keep-alive connections, authentication, faults, and the SSE writer."""

import functools
import ipaddress
import json
import logging
import socket
import ssl
import time
import zlib
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import urls
from .errors import ApiError
from .models.auth import require
from .models.notify import End, RawLine
from .responses import Request, Stream

log = logging.getLogger(__name__)

MAX_EVENTS_PER_LINE = 2000


@functools.lru_cache(maxsize=2)
def _http_date_at(second):
    return formatdate(second, usegmt=True)


def _http_date():
    return _http_date_at(int(time.time()))


def _chunk(data):
    return b'%x\r\n%s\r\n' % (len(data), data)


class ClusterServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, cluster, tls_context, keepalive_s=10.0):
        family = socket.AF_INET6 if ':' in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, ClusterRequestHandler)
        self.cluster = cluster
        self.keepalive_s = keepalive_s
        # The handshake happens in each connection's own thread, so a slow client cannot stall
        # the accept loop.
        self.socket = tls_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def handle_error(self, request, client_address):
        log.debug('connection from %s ended with an error', client_address, exc_info=True)


class ClusterRequestHandler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'QumuloSim/1.0'
    # TCP_NODELAY: the last segment of a large reply (a page of 1,000 handles) otherwise waits for
    # the client's delayed ACK, 40 ms a page.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        log.debug('%s %s', self.address_string(), fmt % args)

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            self.close_connection = True

    # --- one request ---------------------------------------------------------------------------
    def _serve(self):
        cluster = self.server.cluster
        split = urlsplit(self.path)
        body = self._read_body()
        route, params = urls.match(self.command, split.path)
        if route is None:
            if params:
                return self._send_error(
                    ApiError(405, 'http_method_not_allowed_error', f'{self.command} is not allowed on {split.path}')
                )
            return self._send_error(ApiError(404, 'http_not_found_error', f'No such endpoint: {split.path}'))
        req = Request(
            self.command,
            split.path,
            params,
            dict(parse_qsl(split.query, keep_blank_values=True)),
            body,
            self.client_address[0],
            headers=self.headers,
        )
        try:
            if split.path.startswith('/sim/'):
                if not ipaddress.ip_address(req.client.split('%')[0]).is_loopback:
                    raise ApiError(403, 'sim_loopback_only_error', 'The /sim/ control surface is loopback only')
            else:
                cluster.faults.before_call()
            if route.login:
                req.user = cluster.sessions.authenticate(self.headers.get('Authorization'))
            if route.privilege:
                require(req.user, route.privilege)
            result = route.handler(cluster, req)
        except ApiError as e:
            return self._send_error(e)
        except Exception:
            log.exception('%s %s failed', self.command, self.path)
            return self._send_error(ApiError(500, 'internal_error', 'The emulator failed on this request'))
        if isinstance(result, Stream):
            return self._stream(result)
        if result.raw is not None:
            return self._send(result.status, result.raw, 'application/octet-stream')
        payload = b'' if result.body is None else json.dumps(result.body).encode()
        self._send(result.status, payload, 'application/json')

    def _read_body(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            parts = []
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    self.rfile.readline()
                    return b''.join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def _send(self, status, payload, content_type, headers=None):
        head = [
            f'HTTP/1.1 {status} {self.responses.get(status, ("",))[0]}',
            f'Content-Type: {content_type}',
            f'Content-Length: {len(payload)}',
            f'ETag: "{zlib.crc32(payload):08x}"',
            f'Date: {_http_date()}',
        ]  # the cluster's clock, for clients that check skew
        head += [f'{name}: {value}' for name, value in (headers or {}).items()]
        if self.close_connection:
            head.append('Connection: close')
        self.wfile.write(('\r\n'.join(head) + '\r\n\r\n').encode() + payload)

    def _send_error(self, error):
        self._send(error.status, json.dumps(error.body()).encode(), 'application/json', error.headers)

    # --- server-sent events --------------------------------------------------------------------
    def _stream(self, stream):
        sub = stream.subscription
        changes = self.server.cluster.changes
        self.close_connection = True
        try:
            self.wfile.write(
                b'HTTP/1.1 200 OK\r\nContent-Type: text/event-source\r\n'
                b'Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n' + _chunk(b': watching\n\n')
            )
            while True:
                stalled = changes.stalled_until - time.monotonic()
                if stalled > 0:  # /sim/notify/stall: a client that does not read
                    time.sleep(min(stalled, 0.5))
                    continue
                item = sub.take(timeout=self.server.keepalive_s)
                if item is None:
                    self.wfile.write(_chunk(b': keepalive\n\n'))
                    continue
                if isinstance(item, End):
                    return self._end_stream(item)
                if isinstance(item, RawLine):  # /sim/notify/inject: the line exactly as given
                    self.wfile.write(_chunk(item + b'\n\n'))
                    continue
                events, last = list(item), None
                while len(events) < MAX_EVENTS_PER_LINE:  # hand over what is already waiting at once
                    more = sub.take_nowait()
                    if more is None:
                        break
                    if not isinstance(more, list):
                        last = more
                        break
                    events.extend(more)
                self.wfile.write(_chunk(b'data: ' + json.dumps(events).encode() + b'\n\n'))
                if isinstance(last, RawLine):
                    self.wfile.write(_chunk(last + b'\n\n'))
                elif isinstance(last, End):
                    return self._end_stream(last)
        except (OSError, ssl.SSLError):
            pass  # the client went away
        finally:
            stream.close()

    def _end_stream(self, end):
        if end.missed:
            self.wfile.write(
                _chunk(b': fs_watcher_missed_events_error: this watcher fell behind; events were lost\n\n')
            )
        self.wfile.write(b'0\r\n\r\n')
