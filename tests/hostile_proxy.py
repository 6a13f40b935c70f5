"""An HTTPS proxy in front of the emulator that misbehaves on request, for the fault tests.

It forwards every request to the emulator over its own keep-alive connection and relays the
answer, streams included, unless a rule matches the request; then it answers as a broken or
hostile server would. It can also cut connections that stay idle, as load balancers and
firewalls do. Test code only: it is never shipped.

    proxy = HostileProxy(sim, tmp_path, idle_cut_s=2)
    proxy.rule('GET', r'/entries/', 'endless')     # or 'trickle', 'loop', ('reply', status, body, headers)
    config = sim.write_config(path, API_PORT=proxy.port)
"""

import contextlib
import http.client
import json
import pathlib
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sim.qumulo.tls import make_certificate, server_context

HOP_HEADERS = frozenset({'connection', 'keep-alive', 'transfer-encoding', 'content-length'})


class HostileProxy:
    def __init__(self, sim, workdir, idle_cut_s=None, trickle_every_s=5.0):
        self.sim = sim
        self.idle_cut_s = idle_cut_s
        self.trickle_every_s = trickle_every_s
        self.rules = []  # (method, compiled path pattern, action, remaining count or None)
        self.cuts = 0  # idle connections cut
        self.hits = {}  # action name -> requests answered by it
        self.loop_links = {}  # path -> the next link a paging loop repeats
        self._lock = threading.Lock()
        cert, key = make_certificate(sim.host, str(workdir))
        proxy = self

        class Handler(_Handler):
            owner = proxy
            timeout = idle_cut_s  # idle between requests: the socket read times out, we hang up

        self.server = ThreadingHTTPServer((sim.host, 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = server_context(cert, key).wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True)
        self._thread.start()

    def rule(self, method, path_pattern, action, count=None):
        """Answer requests matching method and path (a regex searched in the path and query) with
        `action`: 'endless', 'trickle', 'loop', ('reply', status, json_body, headers) or
        ('stream', [bytes, ...]): a notify stream of those chunks."""
        with self._lock:
            self.rules.append([method, re.compile(path_pattern), action, count])

    def clear(self):
        with self._lock:
            self.rules.clear()

    def _action_for(self, method, path):
        with self._lock:
            for rule in self.rules:
                if rule[0] == method and rule[1].search(path) and rule[3] != 0:
                    if rule[3] is not None:
                        rule[3] -= 1
                    name = rule[2] if isinstance(rule[2], str) else rule[2][0]
                    self.hits[name] = self.hits.get(name, 0) + 1
                    return rule[2]
        return None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    owner = None
    _upstream = None

    def log_message(self, fmt, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except (OSError, ssl.SSLError, http.client.HTTPException):
            pass
        finally:
            if self._upstream is not None:
                self._upstream.close()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except TimeoutError:
            self.close_connection = True
        if self.close_connection and self.owner.idle_cut_s:
            with self.owner._lock:
                self.owner.cuts += 1

    def do_GET(self):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        action = self.owner._action_for(self.command, self.path)
        if action == 'endless':
            return self._endless()
        if action == 'trickle':
            return self._trickle()
        if isinstance(action, tuple) and action[0] == 'stream':
            return self._event_stream(action[1])
        if isinstance(action, tuple) and action[0] == 'reply':
            _, status, reply, headers = action
            return self._reply(status, json.dumps(reply).encode(), headers)
        self._forward(body, loop=action == 'loop')

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # --- hostile answers -------------------------------------------------------------------------
    def _reply(self, status, payload, headers=None):
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _event_stream(self, pieces):
        # A notify stream of our own making: each piece one chunk, then the end of the stream.
        self.close_connection = True
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-source')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        for piece in pieces:
            view = memoryview(piece)
            for start in range(0, len(piece), 65536):  # in the chunks a network delivers
                chunk = view[start : start + 65536]
                self.wfile.write(b'%x\r\n' % len(chunk) + chunk + b'\r\n')
        self.wfile.write(b'0\r\n\r\n')

    def _endless(self):
        # Valid JSON that never ends: a list of entries, 1 MiB a chunk, until the client hangs up.
        self.close_connection = True
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.end_headers()
        piece = b'{"name": "x", "type": "FS_FILE_TYPE_FILE"}, ' * 24000
        self.wfile.write(b'{"files": [')
        while True:
            self.wfile.write(piece)

    def _trickle(self):
        # A well-formed reply, status line and headers included, one byte at a time: no single
        # read ever waits long enough to time out.
        self.close_connection = True
        payload = b'{"files": [], "paging": {"next": ""}}' + b' ' * 100000
        reply = (
            b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(payload)
        ) + payload
        for byte in reply:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(self.owner.trickle_every_s)

    # --- forwarding ------------------------------------------------------------------------------
    def _connect_upstream(self):
        if self._upstream is None:
            context = ssl.create_default_context(cafile=str(self.owner.sim.cert_path))
            context.check_hostname = False
            self._upstream = http.client.HTTPSConnection(
                self.owner.sim.host, self.owner.sim.port, context=context, timeout=60
            )
        return self._upstream

    def _forward(self, body, loop=False):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS | {'host'}}
        upstream = self._connect_upstream()
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
        except (OSError, http.client.HTTPException):
            self._upstream = None
            upstream.close()
            self.close_connection = True  # as a proxy whose backend went away: hang up
            return
        if response.getheader('Content-Type') == 'text/event-source':
            return self._relay_stream(response)
        payload = response.read()
        if loop and response.status == 200:
            # A paging loop: every page names the same next page again (the first one the
            # emulator named, or the request's own URI when there was only one page).
            data = json.loads(payload)
            if isinstance(data, dict) and isinstance(data.get('paging'), dict):
                where = self.path.split('?')[0]
                with self.owner._lock:
                    data['paging']['next'] = self.owner.loop_links.setdefault(
                        where, data['paging'].get('next') or self.path
                    )
                payload = json.dumps(data).encode()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in HOP_HEADERS | {'date', 'server'}:
                self.send_header(name, value)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _relay_stream(self, response):
        self.close_connection = True
        self.send_response(response.status)
        self.send_header('Content-Type', 'text/event-source')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        if self.owner.idle_cut_s:
            response.fp.raw._sock.settimeout(self.owner.idle_cut_s)
        try:
            while True:
                data = response.read1(65536)
                if not data:
                    self.wfile.write(b'0\r\n\r\n')
                    return
                self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))
        except (TimeoutError, socket.timeout):
            with self.owner._lock:
                self.owner.cuts += 1  # an idle stream is cut like any idle connection
        finally:
            self._upstream = None
            response.close()


# -- a tool run to its end through the proxy, its peak memory measured (qfs_filelock's and the lock
# manager's fault tests) ----------------------------------------------------------------------------

PROJECT = pathlib.Path(__file__).resolve().parents[1]
MEMORY_LIMIT_KB = 600 * 1024  # a bounded reply is 64 MiB; an unbounded one would grow until the machine ran out


@contextlib.contextmanager
def hostile_proxy(sim, workdir):
    """A HostileProxy in front of `sim` (for a `proxy` fixture), stopped on leaving the block."""
    proxy = HostileProxy(sim, workdir)
    try:
        yield proxy
    finally:
        proxy.stop()


def run_tool(sim, proxy, tmp_path, *args, timeout=150):
    """Run a tool (its script and arguments) through the proxy to its end; returns (exit status,
    stderr, peak RSS in KiB, seconds). One that grows past MEMORY_LIMIT_KB or runs past the
    timeout is killed and the test fails."""
    config = sim.write_config(tmp_path / 'tool.ini', API_PORT=proxy.port)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, *args, '--config-file', str(config)],
        cwd=PROJECT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, rss_kb(proc.pid))
        if peak > MEMORY_LIMIT_KB or time.monotonic() - started > timeout:
            proc.kill()
            proc.wait()
            pytest.fail(
                f'{args[0]} {args[1]} still running after {time.monotonic() - started:.0f} s with {peak // 1024} MiB'
            )
        time.sleep(0.1)
    return proc.returncode, proc.stderr.read(), peak, time.monotonic() - started


def run_trickled(sim, proxy, tmp_path, pattern, *args):
    """run_tool while the proxy trickles the answers to GET `pattern` a byte every 2 s: no read
    ever waits long enough for the 30 s socket timeout, so only the call's deadline can end it."""
    proxy.trickle_every_s = 2
    proxy.rule('GET', pattern, 'trickle')
    return run_tool(sim, proxy, tmp_path, *args)


def rss_kb(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            return next(int(line.split()[1]) for line in f if line.startswith('VmRSS:'))
    except (OSError, StopIteration):
        return 0


def assert_one_line_exit_9(result, prog, *words):
    """run_tool's result: exit 9 and one line `PROG: error: bad reply from the cluster ...` naming
    `words`, within the memory limit."""
    status, stderr, peak, _ = result
    assert status == 9, stderr
    assert stderr.count('\n') == 1 and stderr.startswith(f'{prog}: error: bad reply from the cluster'), stderr
    assert 'Traceback' not in stderr and all(w in stderr for w in words), stderr
    assert peak < MEMORY_LIMIT_KB
