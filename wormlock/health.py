"""systemd's notify protocol and watchdog: READY=1 once the watcher watches, WATCHDOG=1 only while
it makes progress, so that the unit's WatchdogSec restarts a watcher that hangs.

Progress means that every part of it moves:
- each folder's notify stream delivered a keepalive or events within the silence threshold (the
  watcher itself replaces a stream silent that long; a stream that stays silent once replaced,
  or a reader that hangs, is what a restart is for). While the cluster does not answer at all,
  the watcher is riding out an outage, which a restart would only repeat: that is not a hang;
- every file a worker took is finished within the stuck threshold (a lock is two calls, each
  complete within 60 s);
- every thread of the watcher runs.
"""

import logging
import os
import socket
import threading
import time
from typing import Callable, Dict, List, Optional, Set, Tuple

from .hooks import Hooks

log = logging.getLogger(__name__)

# A file a worker took and has not finished this much later: the worker is stuck. A lock is two
# calls (its attributes, the change), each complete within 60 s, and one asked again on a new
# connection; this leaves room for all of them. QFS_FILELOCK_STUCK_S changes it (the tests
# shorten it).
STUCK_S = 300.0
STUCK_ENV = 'QFS_FILELOCK_STUCK_S'


class Notifier:
    """sd_notify(3) without libsystemd: each message one datagram to $NOTIFY_SOCKET (a leading
    '@' is the abstract namespace); nothing at all when it is unset, as when not run by systemd."""

    def __init__(self, address: Optional[str]):
        self.address = address or None
        self._warned = False

    @classmethod
    def from_environment(cls) -> 'Notifier':
        return cls(os.environ.get('NOTIFY_SOCKET'))

    def send(self, message: str) -> None:
        """Never raises: a watcher that cannot tell systemd about itself goes on locking (and is
        restarted by the watchdog, if one is set, which is the right thing for a broken link)."""
        if self.address is None:
            return
        if self.address[0] not in '/@':
            self._warn_once(f'NOTIFY_SOCKET={self.address} is not a unix socket path; systemd is not told anything')
            return
        target = '\0' + self.address[1:] if self.address[0] == '@' else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), target)
        except OSError as e:
            self._warn_once(
                f'could not tell systemd {message.splitlines()[0]} through {self.address} ({e.strerror or e})'
            )

    def _warn_once(self, text: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning('%s', text)


def watchdog_seconds() -> Optional[float]:
    """The WatchdogSec systemd set for this process (WATCHDOG_USEC, WATCHDOG_PID), or None."""
    usec, pid = os.environ.get('WATCHDOG_USEC', ''), os.environ.get('WATCHDOG_PID', '')
    if pid and pid != str(os.getpid()):
        return None  # set for another process (the one that started this one)
    try:
        seconds = int(usec) / 1e6
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def stuck_threshold() -> float:
    """STUCK_S, or the environment's QFS_FILELOCK_STUCK_S; ValueError for a value that is no
    number of seconds above 0."""
    text = os.environ.get(STUCK_ENV, '').strip()
    if not text:
        return STUCK_S
    seconds = float(text)
    if not 0 < seconds <= 86400:
        raise ValueError(f'{STUCK_ENV}={text}: give seconds above 0 and at most 86400')
    return seconds


class Health(Hooks):
    def __init__(
        self,
        notifier: Notifier,
        watchdog_s: Optional[float],
        silence_s: float,
        stuck_s: float = STUCK_S,
        now: Callable[[], float] = time.monotonic,
    ):
        self.notifier = notifier
        self.watchdog_s = watchdog_s
        self.silence_s = silence_s
        self.stuck_s = stuck_s
        self._now = now
        self._lock = threading.Lock()
        self._alive: Dict[str, float] = {}  # folder -> when its stream last showed life
        self._suspect: Set[str] = set()  # folders whose last stream died silent: a new one must show life
        self._outage = False
        self._opened = self._scanned = self._ready = False
        self._counts = {'locked': 0, 'failed': 0}
        self._taken: Callable[[], Optional[Tuple[float, str]]] = lambda: None
        self._waiting: Callable[[], Tuple[int, float]] = lambda: (0, 0.0)
        self._dead_threads: Callable[[], List[str]] = list
        self._problem: Optional[str] = None
        self._stop = threading.Event()
        self._stopped = False
        self._thread: Optional[threading.Thread] = None

    @classmethod
    def from_environment(cls, silence_s: float, stuck_s: float) -> 'Health':
        return cls(Notifier.from_environment(), watchdog_seconds(), silence_s, stuck_s)

    def watch(self, schedule: object, dead_threads: Callable[[], List[str]]) -> None:
        """What the checks read besides the hooks: the schedule (its oldest_taken() and waiting())
        and the names of the watcher's threads that ended although it was not stopped."""
        self._taken = schedule.oldest_taken  # type: ignore[attr-defined]
        self._waiting = schedule.waiting  # type: ignore[attr-defined]
        self._dead_threads = dead_threads

    # --- the checks ----------------------------------------------------------------------------
    def problem(self) -> Optional[str]:
        """Why the watcher is not making progress, or None while it is."""
        now = self._now()
        with self._lock:
            silent = [] if self._outage else [(now - t, f) for f, t in self._alive.items() if now - t > self.silence_s]
        if silent:
            seconds, folder = max(silent)
            return f'the notify stream of {folder} has sent nothing for {seconds:.0f} s, not even a keepalive'
        taken = self._taken()
        if taken is not None and taken[0] > self.stuck_s:
            return f'a worker has been locking {taken[1]} for {taken[0]:.0f} s'
        dead = self._dead_threads()
        if dead:
            return f'{", ".join(dead)} no longer {"runs" if len(dead) == 1 else "run"}'
        return None

    def status(self) -> str:
        """One line for `systemctl status`."""
        waiting, _ = self._waiting()
        with self._lock:
            folders = sorted(self._alive)
            locked, failed, outage = self._counts['locked'], self._counts['failed'], self._outage
        where = folders[0] if len(folders) == 1 else f'{len(folders)} folders'
        text = f'watching {where}: {locked} files locked, {failed} failed, {waiting} waiting'
        return text + ('; the cluster is unavailable, retrying' if outage else '')

    # --- the watchdog ----------------------------------------------------------------------------
    def start(self) -> None:
        """Sends WATCHDOG=1 every quarter of WatchdogSec while the watcher makes progress (systemd
        asks for at least every half: one check that fails at a bad moment costs nothing)."""
        if self.watchdog_s is None or self.notifier.address is None:
            return
        self._thread = threading.Thread(target=self._run, name='watchdog', daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.watchdog_s / 4):
            self.tick()

    def tick(self) -> None:
        problem = self.problem()
        if problem is None:
            if self._problem is not None:
                log.info('the watcher makes progress again: systemd is told it is alive')
            self._problem = None
            self.notifier.send(f'WATCHDOG=1\nSTATUS={self.status()}')
            return
        if self._problem is None:
            log.warning(
                'not telling systemd the watcher is alive: %s (its watchdog restarts the watcher %g s after the '
                'last sign of life)',
                problem,
                self.watchdog_s,
            )
        self._problem = problem
        self.notifier.send(f'STATUS=not making progress: {problem}')

    def stop(self) -> None:
        """STOPPING=1, once; no WATCHDOG=1 after it."""
        self._stop.set()
        if not self._stopped:
            self._stopped = True
            self.notifier.send('STOPPING=1\nSTATUS=stopping: finishing the locks in progress')

    # --- hooks ---------------------------------------------------------------------------------
    def stream_opened(self, folder: str) -> None:
        with self._lock:
            if folder not in self._suspect:
                self._alive[folder] = self._now()
            else:
                self._alive.setdefault(folder, self._now())
            self._opened = True
        self._ready_once()

    def stream_alive(self, folder: str) -> None:
        now = self._now()
        with self._lock:
            self._alive[folder] = now
            self._suspect.discard(folder)

    def stream_ended(self, folder: str, silent: bool) -> None:
        if silent:
            with self._lock:
                self._suspect.add(folder)

    def stream_stopped(self, folder: str) -> None:
        with self._lock:
            self._alive.pop(folder, None)
            self._suspect.discard(folder)

    def outage_started(self) -> None:
        with self._lock:
            self._outage = True

    def outage_ended(self) -> None:
        # The streams get the silence threshold from now on to show life: they reconnect after
        # the backoff, then wait for the first keepalive.
        now = self._now()
        with self._lock:
            self._outage = False
            for folder in self._alive:
                self._alive[folder] = max(self._alive[folder], now)

    def scan_started(self, folder: str) -> None:
        with self._lock:
            self._scanned = True
        self._ready_once()

    def reported(self, outcome: object) -> None:
        result = getattr(outcome, 'result', None)
        if result in self._counts:
            with self._lock:
                self._counts[result] += 1

    def _ready_once(self) -> None:
        with self._lock:
            if self._ready or not (self._opened and self._scanned):
                return
            self._ready = True
        self.notifier.send(f'READY=1\nSTATUS={self.status()}')
