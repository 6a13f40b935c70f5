"""Prometheus metrics of the watcher (--metrics-port), in a registry of its own: what it locked,
what waits, how its streams and catch-up scans fare. Every name starts with qfs_filelock_."""

import errno
import socket
import threading
import time
from typing import Callable, Dict, Set

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from .errors import BadOption
from .hooks import Hooks

# The results of the audit log, so that the counts and the log read alike ('unsettled' is no
# result: the file is looked at again later).
RESULTS = ('locked', 'already-locked', 'would-lock', 'failed', 'skipped-not-a-file', 'gone')
# The policy of a file locked under the command line's rules, with no policy name of its own.
DEFAULT_POLICY = 'default'


class Metrics(Hooks):
    def __init__(self, now: Callable[[], float] = time.monotonic):
        # The `_created` series would double every counter on the page; nothing reads them.
        prometheus_client.disable_created_metrics()
        self.registry = CollectorRegistry()
        r = self.registry
        self.files = Counter(
            'qfs_filelock_files',
            'Files the watcher acted on, by policy and result (as in the audit log)',
            ['policy', 'result'],
            registry=r,
        )
        self.waiting = Gauge('qfs_filelock_files_waiting', 'Files waiting to be locked', registry=r)
        self.oldest_waiting = Gauge(
            'qfs_filelock_oldest_waiting_seconds',
            'Seconds the longest-waiting file has waited since its last change',
            registry=r,
        )
        self.events_received = Counter('qfs_filelock_events', 'Change events received', ['folder'], registry=r)
        self.reconnects = Counter(
            'qfs_filelock_stream_reconnects', 'Notify streams opened again after one was lost', ['folder'], registry=r
        )
        self.outages = Counter('qfs_filelock_outages', 'Times the cluster stopped answering', registry=r)
        self.silence = Gauge(
            'qfs_filelock_stream_silence_seconds',
            'Seconds since the folder stream last delivered an event or a keepalive',
            ['folder'],
            registry=r,
        )
        self.scan_seconds = Gauge(
            'qfs_filelock_scan_duration_seconds',
            'How long the last complete catch-up scan took',
            ['folder'],
            registry=r,
        )
        self.scan_files = Gauge(
            'qfs_filelock_scan_files', 'Files the last complete catch-up scan found', ['folder'], registry=r
        )
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        self._now = now
        self._lock = threading.Lock()
        self._alive: Dict[str, float] = {}  # folder -> when its stream last delivered something
        self._policies: Set[str] = set()

    def watch_schedule(self, schedule: object) -> None:
        """The waiting gauges read the schedule (its waiting()) when scraped."""
        self.waiting.set_function(lambda: schedule.waiting()[0])  # type: ignore[attr-defined]
        self.oldest_waiting.set_function(lambda: schedule.waiting()[1])  # type: ignore[attr-defined]

    def serve(self, address: str, port: int) -> int:
        """Serves /metrics over HTTP on its own thread; returns the port (the one chosen, for 0).
        Raises BadOption when it cannot listen there (a port in use)."""
        try:
            server, _ = prometheus_client.start_http_server(port, address, registry=self.registry)
        except OSError as e:
            raise BadOption(why_not(address, port, e)) from None
        return server.server_port

    # --- hooks ---------------------------------------------------------------------------------
    def stream_opened(self, folder: str) -> None:
        with self._lock:
            first = folder not in self._alive
            if first:
                self._alive[folder] = self._now()
        if first:
            self.silence.labels(folder).set_function(lambda: self._silent_for(folder))
        else:
            self.reconnects.labels(folder).inc()

    def stream_alive(self, folder: str) -> None:
        self._alive[folder] = self._now()  # one store: no lock needed on the hot path

    def stream_stopped(self, folder: str) -> None:
        with self._lock:
            if self._alive.pop(folder, None) is not None:
                self.silence.remove(folder)

    def events(self, folder: str, count: int) -> None:
        self.events_received.labels(folder).inc(count)

    def outage_started(self) -> None:
        self.outages.inc()

    def scan_ended(self, folder: str, seconds: float, files: int) -> None:
        self.scan_seconds.labels(folder).set(seconds)
        self.scan_files.labels(folder).set(files)

    def reported(self, outcome: object) -> None:
        result = getattr(outcome, 'result', None)
        if result not in RESULTS:
            return
        policy = getattr(outcome, 'policy', None) or getattr(outcome, 'policy_name', None) or DEFAULT_POLICY
        if policy not in self._policies:
            # Every result of a policy shows from its first file on, at 0: an alert on the
            # increase of `failed` then sees the first failure too.
            for each in RESULTS:
                self.files.labels(policy, each)
            self._policies.add(policy)
        self.files.labels(policy, result).inc()

    def _silent_for(self, folder: str) -> float:
        last = self._alive.get(folder)
        return 0.0 if last is None else self._now() - last


def why_not(address: str, port: int, error: OSError) -> str:
    """The one line for a metrics address the watcher cannot listen on."""
    reason = error.strerror or str(error)
    if error.errno == errno.EADDRINUSE:
        return f'--metrics-port {port}: another program listens on {address}:{port} already ({reason}); choose another port'
    if error.errno in (errno.EACCES, errno.EPERM):
        return f'--metrics-port {port}: not allowed to listen on it ({reason}); choose a port above 1023'
    return f'--metrics-address {address}: cannot listen there ({reason}); give an address of this host'


def check_free(address: str, port: int) -> None:
    """Raises BadOption if serve() could not listen there: checked before a daemon detaches, while
    a terminal can still show why (the daemon itself serves the metrics after detaching)."""
    try:
        family, kind, proto, _, where = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the metrics server does
            sock.bind(where)
    except OSError as e:
        raise BadOption(why_not(address, port, e)) from None
