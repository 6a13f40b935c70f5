"""One folder's watch: notify stream -> the shared schedule, with catch-up scans. The worker pool
that takes files from the schedule and locks them is the service's (service.py), shared by every
folder.

Nothing may be missed: a catch-up scan runs after every (re)connect, once the stream is open, and
every --rescan-every seconds, so changes made while the watcher was down or disconnected are found.
"""

import fnmatch
import json
import logging
import os
import posixpath
import queue
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

from qumulo.lib.request import RequestError

from common.auth import Client
from common.config import ClusterConfig
from common.errors import describe, is_transient
from .clock import ClusterClock
from .errors import CredentialsRejected, DirectoryMissing, WatchForbidden, WatchRefused
from .hooks import Hooks
from .schedule import Schedule
from .stream import ChangeStream, StreamEnded, StreamError
from .walk import DIRECTORY, refusal, walk_files

log = logging.getLogger(__name__)

# Qumulo's 24 notification types (the SDK's FSNotifyFilters), the only ones --events accepts and
# the only ones ever sent in the notify filter: a cluster refuses a filter naming any other (400).
EVENT_TYPES = (
    'child_file_added',
    'child_dir_added',
    'child_file_removed',
    'child_dir_removed',
    'child_file_moved_from',
    'child_file_moved_to',
    'child_dir_moved_from',
    'child_dir_moved_to',
    'child_btime_changed',
    'child_mtime_changed',
    'child_atime_changed',
    'child_size_changed',
    'child_extra_attrs_changed',
    'child_acl_changed',
    'child_owner_changed',
    'child_group_changed',
    'child_data_written',
    'child_stream_added',
    'child_stream_removed',
    'child_stream_moved_from',
    'child_stream_moved_to',
    'child_stream_size_changed',
    'child_stream_data_written',
    'self_removed',
)
DEFAULT_EVENTS = ('child_file_added', 'child_data_written', 'child_file_moved_to')
# With --settle, these restart the quiet-period clock of a file already waiting: the file is still
# being written or put in place. Data and size (of the file or of one of its streams), and the
# attributes a copy sets once the data is in (times, ACL, owner, group, extended attributes): a
# lock in between would make the copy fail. Not the access time: reading a file is no activity,
# and a file read often would otherwise never settle.
ACTIVITY_EVENTS = frozenset(
    {
        'child_file_added',
        'child_file_moved_to',
        'child_data_written',
        'child_size_changed',
        'child_mtime_changed',
        'child_btime_changed',
        'child_acl_changed',
        'child_owner_changed',
        'child_group_changed',
        'child_extra_attrs_changed',
        'child_stream_added',
        'child_stream_data_written',
        'child_stream_size_changed',
    }
)


# A file whose lock call failed on a transient fault is tried again this much later (or after
# the cluster's Retry-After).
LOCK_RETRY_S = 5.0


# Besides the types that start a lock: the watched directory going away, and (recursive) a
# directory moved in, which the cluster announces without a word about what it holds. Removals
# are not followed: one name of a hard-linked file may go while another remains, and the
# worker reads each file by id anyway.
FOLLOWED_EVENTS = frozenset({'self_removed'})
MOVED_IN_DIRECTORY = 'child_dir_moved_to'
FILE_ID = re.compile(r'[0-9]{1,20}')
# A watcher thread that stopped on an unexpected error starts again after this pause.
RESTART_PAUSE_S = 1.0


class Shutdown(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT to leave the stream read. A BaseException, as
    KeyboardInterrupt is: the broad `except Exception` that keeps the watcher going through any
    fault must never swallow a stop."""


@dataclass
class WatchOptions:
    directory_path: Optional[str] = None
    directory_id: Optional[str] = None
    recursive: bool = False
    events: Tuple[str, ...] = DEFAULT_EVENTS
    interval_s: float = 15.0
    settle_s: Optional[float] = None
    rescan_every_s: Optional[float] = None
    backoff_max_s: float = 60.0
    exclude: Tuple[str, ...] = ()  # shell patterns of file names never locked (policy.py)


@dataclass
class Backoff:
    """Exponential backoff with full jitter, so many watchers do not reconnect in step."""

    base_s: float = 0.5
    max_s: float = 60.0
    attempt: int = field(default=0)

    def next(self) -> float:
        delay = random.uniform(0, min(self.max_s, self.base_s * 2**self.attempt))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class Outage:
    """One warning when the cluster stops answering and one when it answers again, however many
    calls (stream, workers, scans) fail in between: a restart must not flood the log."""

    def __init__(self, hooks: Optional[Hooks] = None) -> None:
        self._hooks = hooks or Hooks()
        self._lock = threading.Lock()
        self._since: Optional[float] = None  # monotonic time the outage started, None while the cluster answers
        self._ended_at = float('-inf')
        self._failures = 0

    def failed(self, reason: str, call_started: Optional[float] = None) -> None:
        """A call failed with a transient error; call_started (monotonic) lets a call that began
        before the outage was over not start a new one."""
        with self._lock:
            if call_started is not None and call_started < self._ended_at:
                return
            self._failures += 1
            if self._since is not None:
                log.debug('the cluster is still unavailable: %s', reason)
                return
            self._since = time.monotonic()
        self._hooks.outage_started()
        log.warning('the cluster is unavailable (%s); retrying until it answers again', reason)

    def ended(self, call_started: Optional[float] = None) -> None:
        """A call succeeded; call_started (monotonic) lets a call that began before the outage,
        and was answered before the cluster went away, not end it."""
        if self._since is None:  # the common case, without taking the lock
            return
        with self._lock:
            if self._since is None or (call_started is not None and call_started < self._since):
                return
            lasted, failures = time.monotonic() - self._since, self._failures
            self._since, self._failures, self._ended_at = None, 0, time.monotonic()
        self._hooks.outage_ended()
        log.warning('the cluster is back after %.1f s (%d failed calls meanwhile); catching up', lasted, failures)


class Watcher:
    # The schedule and the outage are the service's, shared by every folder; a watcher only asked
    # to check the cluster (resolve the directory, check recursion) needs neither.
    def __init__(
        self,
        client: Client,
        config: ClusterConfig,
        options: WatchOptions,
        schedule: Optional[Schedule] = None,
        outage: Optional['Outage'] = None,
        clock: Optional[ClusterClock] = None,
        hooks: Optional[Hooks] = None,
    ):
        self.client = client
        self.hooks = hooks or Hooks()  # the metrics and the systemd watchdog listen here
        self.config = config
        self.options = options
        self.clock = clock
        self.schedule = schedule if schedule is not None else Schedule()
        self.directory_id: Optional[str] = None
        self.directory_path: Optional[str] = None
        self._stop = threading.Event()
        self._rescan_wanted = threading.Event()
        self._local = threading.local()
        self._threads: List[threading.Thread] = []
        self._stream: Optional[ChangeStream] = None
        self._opened: Optional[ChangeStream] = None  # the stream check_watch_allowed opened, for run()
        self.outage = outage if outage is not None else Outage(self.hooks)
        # (directory id or '', path) of each directory moved in, to look into; None: stop.
        self._moved_in: 'queue.SimpleQueue[Optional[Tuple[str, str]]]' = queue.SimpleQueue()

    # --- start ---------------------------------------------------------------------------------
    def resolve_directory(self) -> Dict[str, Any]:
        opts = self.options
        try:
            attrs = self.client.fs.get_file_attr(path=opts.directory_path, id_=opts.directory_id)
        except RequestError as e:
            if e.status_code == 404:
                what = opts.directory_path or f'file id {opts.directory_id}'
                raise DirectoryMissing(f'the directory {what} does not exist on the cluster')
            raise
        if attrs['type'] != DIRECTORY:
            raise WatchRefused(f'{attrs["path"]} is not a directory: give the directory to watch')
        self.directory_id, self.directory_path = attrs['id'], attrs['path'].rstrip('/') or '/'
        return attrs

    def check_watch_allowed(self) -> None:
        """Ask for the stream once, as run() will, and close it: a watch the account may not have
        (no READ on the directory; --recursive without the Data-Administrators role) is refused
        now, in one line, before anything is locked and before a daemon detaches. What waiting
        may cure (the network, a busy cluster) and what the other checks word better (recursion
        disabled) are left to them and to run()."""
        stream = ChangeStream(
            self.config,
            self.client.credentials.bearer_token,
            self.directory_id,
            self.options.recursive,
            self.stream_types(),
            self.clock,
        )
        try:
            # Kept open for run() to read: a second watch would linger on the cluster until it
            # noticed this one's connection closed, and events from now on are not lost.
            self._opened = stream.__enter__()
        except StreamError as e:
            if e.status == 403:
                raise self._forbidden(e) from None
            if e.status == 404:
                raise DirectoryMissing(f'the directory {self.directory_path} does not exist on the cluster ({e})')
        except StreamEnded:
            pass

    def _forbidden(self, error: StreamError) -> WatchForbidden:
        need = (
            'a recursive watch needs the Data-Administrators role: give the account that role, or watch '
            'without --recursive'
            if self.options.recursive
            else 'a watch needs READ on the directory for the account'
        )
        return WatchForbidden(f'the cluster refused to watch {self.directory_path}: {error}; {need}')

    def check_recursion_allowed(self) -> None:
        if not self.options.recursive:
            return
        mode = self.client.fs.get_notify_settings().get('recursive_mode', 'ENABLED')
        if mode != 'ENABLED':
            raise WatchRefused(
                f"--recursive needs recursive change notify, but the cluster's recursive_mode "
                f'is {mode}; enable it (qq fs_set_notify_settings) or watch without --recursive'
            )

    def start_threads(self) -> None:
        self._spawn(self._scan_loop, 'catch-up-scan')
        if self.options.recursive:
            self._spawn(self._moved_in_loop, 'moved-in-scan')

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        self._threads.append(spawn(target, name, self._stop))

    def _worker_client(self) -> Client:
        # One RestClient holds one connection: each thread gets its own, sharing the session.
        if not hasattr(self._local, 'client'):
            self._local.client = self.client.clone()
        return self._local.client

    # --- the stream (main thread) --------------------------------------------------------------
    def run(self) -> None:
        """Watch until stop(). Every transient fault (network, a restarting cluster, 5xx, 429, a
        garbled reply) is waited out with backoff; only what a restart cannot fix raises."""
        backoff = Backoff(max_s=self.options.backoff_max_s)
        types = self.stream_types()
        while not self._stop.is_set():
            wait = None
            try:
                token = self.client.credentials.bearer_token
                opened, self._opened = self._opened, None
                with opened or ChangeStream(
                    self.config, token, self.directory_id, self.options.recursive, types, self.clock
                ) as stream:
                    self._stream = stream
                    stream.on_alive = lambda: self.hooks.stream_alive(self.directory_path)
                    self.hooks.stream_opened(self.directory_path)
                    self.outage.ended()
                    log.info(
                        'watching %s%s for changes',
                        self.directory_path,
                        ' and everything below it' if self.options.recursive else '',
                    )
                    backoff.reset()
                    self.request_rescan()
                    for batch in stream.batches():
                        self.on_events(batch)
            except StreamEnded as e:
                if self._stop.is_set():
                    break
                self.hooks.stream_ended(self.directory_path, e.silent)
                if e.unavailable:
                    self.outage.failed(str(e))
                else:
                    log.warning('%s; reconnecting', e)
            except StreamError as e:
                wait = self._on_stream_error(e)
            finally:
                self._stream = None
            if not self._stop.is_set():
                self._stop.wait(backoff.next() if wait is None else wait)
        self.hooks.stream_stopped(self.directory_path)

    def _on_stream_error(self, error: StreamError) -> Optional[float]:
        """What the notify request's refusal means: seconds to wait before reconnecting (None:
        the backoff's), or a ToolError when waiting cannot help."""
        if error.status == 401:
            log.info('the notify stream needs a new session; logging in again')
            started = time.monotonic()
            try:
                self.client.auth.who_am_i()  # the client logs in again on this 401
            except Exception as e:  # noqa: BLE001 - the network and garbled replies: wait it out
                if isinstance(e, RequestError) and e.status_code == 401:
                    raise CredentialsRejected(
                        'the cluster no longer accepts our credentials (session or access token rejected)'
                    )
                if not is_transient(e):
                    raise
                self.outage.failed(describe(e), started)
            return None
        if error.status == 429 or error.status >= 500 or error.status == 0:
            self.outage.failed(f'the notify request failed: {error.status or ""} {error}'.replace('  ', ' '))
            return error.retry_after
        if error.error_class == 'fs_watcher_missed_events_error':
            # The cluster dropped events it could not deliver: reconnect, and the catch-up scan
            # that follows every connect finds whatever they named.
            log.warning('the cluster lost change events (%s); reconnecting and rescanning', error)
            return 0
        if error.status == 404:
            # Exit rather than wait: a directory made again at the same path is a new file id,
            # which this watch (by id) would never see; a restart resolves the path again.
            raise DirectoryMissing(
                f'the watched directory {self.directory_path} (id {self.directory_id}) no longer '
                f'exists on the cluster ({error})'
            )
        if error.status == 403:
            raise self._forbidden(error)
        raise WatchRefused(f'the cluster refused to watch {self.directory_path}: {error}')

    def _followed_types(self) -> FrozenSet[str]:
        return FOLLOWED_EVENTS | ({MOVED_IN_DIRECTORY} if self.options.recursive else frozenset())

    def stream_types(self) -> Tuple[str, ...]:
        """The notify filter: the types that start a lock, the activity that delays one (with
        --settle) and what the watcher follows; never a type outside Qumulo's 24."""
        types = set(self.options.events) | self._followed_types()
        if self.options.settle_s:
            types |= ACTIVITY_EVENTS
        return tuple(t for t in EVENT_TYPES if t in types)

    def on_events(self, batch: Any) -> None:
        """One `data:` line of the stream. Events of the wrong shape (a broken or hostile server)
        are skipped with one warning for the line; the well-formed ones are acted on."""
        if not isinstance(batch, list):
            log.warning(
                'ignored a malformed notify event line from the cluster (not a list of events): %s', _excerpt(batch)
            )
            return
        self.hooks.events(self.directory_path, len(batch))
        bad = [event for event in batch if not self._on_event(event)]
        if bad:
            log.warning(
                'ignored a malformed notify event from the cluster (%d of %d in the line), e.g. %s',
                len(bad),
                len(batch),
                _excerpt(bad[0]),
            )

    def _on_event(self, event: Any) -> bool:
        """Acts on one event; False when it is malformed."""
        parsed = parse_event(event)
        if parsed is None:
            return False
        kind, relative, file_id = parsed
        settle = self.options.settle_s
        path = self._cluster_path(relative)
        if kind == 'self_removed':
            log.error('the watched directory %s was removed', self.directory_path)
        elif excluded(self.options.exclude, path):
            pass
        elif kind == MOVED_IN_DIRECTORY and self.options.recursive:
            self._moved_in.put((file_id, path))
        elif kind in self.options.events or (settle and kind in ACTIVITY_EVENTS):
            file_id = file_id or self._id_of(path)
            if file_id and kind in self.options.events:
                self.schedule.touch(file_id, path, settle or self.options.interval_s, restart=bool(settle))
            elif file_id:
                self.schedule.restart_clock(file_id, settle)
        return True

    def _cluster_path(self, relative: str) -> str:
        return os.path.join(self.directory_path, relative) if relative else self.directory_path

    def _id_of(self, path: str) -> str:
        """The id of an entry the event did not name by id; '' when it is gone already (a
        temporary name, for instance). Never raises: it runs on the stream's thread."""
        try:
            return self._worker_client().fs.get_file_attr(path=path)['id']
        except Exception as e:  # noqa: BLE001 - the catch-up scan finds the file instead
            if isinstance(e, RequestError) and e.status_code == 404:
                return ''
            log.warning('could not look up %s named by a change (%s); rescanning', path, describe(e))
            self.request_rescan()
            return ''

    # --- directories moved in (recursive) --------------------------------------------------------
    def _moved_in_loop(self) -> None:
        """Looks into each directory moved into the tree: the cluster sends no event for what it
        holds. Its own thread, so a big tree does not hold up the stream."""
        while not self._stop.is_set():
            item = self._moved_in.get()
            if item is None:
                return
            directory_id, path = item
            started = time.monotonic()
            try:
                directory_id = directory_id or self._worker_client().fs.get_file_attr(path=path)['id']
                delay = self.options.settle_s or self.options.interval_s
                count, _ = self._queue_tree(directory_id, path, delay, f'looking into {path}, moved in')
            except Exception as e:  # noqa: BLE001 - moved on again, or the cluster's trouble
                log.warning('could not look into %s, moved in (%s); rescanning', path, describe(e))
                self.request_rescan()
                continue
            log.info('looked into %s, moved in: %d files queued in %.1f s', path, count, time.monotonic() - started)

    def _queue_tree(self, directory_id: str, path: str, delay: float, what: str) -> Tuple[int, int]:
        """Queue every file under the directory (by id: a rename during the walk does not derail
        it); the workers skip those already locked. A directory the account may not list is
        logged (once for this walk, `what` naming it) and passed over: the others are still
        walked. -> (files queued, directories not listed)."""
        count, not_listed = 0, []

        def denied(dir_id: str, dir_path: str, error: RequestError) -> None:
            not_listed.append(dir_path)
            log.warning('%s: cannot list %s (%s); the files in it are not checked', what, dir_path, refusal(error))

        for attrs in walk_files(
            self._worker_client(), directory_id, self.options.recursive, self._stop.is_set, path, denied
        ):
            if not excluded(self.options.exclude, attrs['path']):
                self.schedule.touch(attrs['id'], attrs['path'], delay, restart=False, source='scan')
                count += 1
        return count, len(not_listed)

    # --- catch-up scans ------------------------------------------------------------------------
    def request_rescan(self) -> None:
        self._rescan_wanted.set()

    def _scan_loop(self) -> None:
        backoff = Backoff(base_s=LOCK_RETRY_S, max_s=self.options.backoff_max_s)
        while not self._stop.is_set():
            self._rescan_wanted.wait(self.options.rescan_every_s)
            if self._stop.is_set():
                return
            self._rescan_wanted.clear()
            started = time.monotonic()
            try:
                self.scan_once()
                backoff.reset()
            except Exception as e:  # noqa: BLE001 - a scan cut short is run again, never given up
                if is_transient(e):
                    self.outage.failed(describe(e), started)
                else:
                    log.warning('catch-up scan stopped early (%s); it runs again', describe(e))
                self._stop.wait(backoff.next())
                self.request_rescan()

    def scan_once(self) -> int:
        """Queue every file in the tree: the workers skip those already locked."""
        started = time.monotonic()
        what = f'catch-up scan of {self.directory_path}'
        self.hooks.scan_started(self.directory_path)
        count, not_listed = self._queue_tree(self.directory_id, self.directory_path, 0, what)
        self.hooks.scan_ended(self.directory_path, time.monotonic() - started, count)
        log.info(
            '%s: %d files checked in %.1f s%s',
            what,
            count,
            time.monotonic() - started,
            f', {not_listed} {"directory" if not_listed == 1 else "directories"} not listed' if not_listed else '',
        )
        return count

    # --- stop ----------------------------------------------------------------------------------
    def stop(self, close_stream: bool = True) -> None:
        """Ask every loop to end. From a signal handler pass close_stream=False and raise
        instead: closing the stream under the read it interrupted would break that read."""
        self._stop.set()
        self._rescan_wanted.set()
        self._moved_in.put(None)  # SimpleQueue.put may be called from a signal handler
        if close_stream:
            self.close_opened_stream()
            stream = self._stream
            if stream is not None:
                stream.close()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def dead_threads(self) -> List[str]:
        """The names of its threads that ended although it was not stopped (the watchdog's check)."""
        return [] if self._stop.is_set() else [t.name for t in self._threads if not t.is_alive()]

    def close_opened_stream(self) -> None:
        """Close the stream check_watch_allowed opened, if run() has not taken it over."""
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.close()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def spawn(target: Callable[[], None], name: str, stop: threading.Event) -> threading.Thread:
    """Run `target` on a thread that never dies silently: an error its own loop did not expect is
    logged in one line and the loop starts again (after a pause, so a lasting fault cannot spin),
    until `stop` is set. Workers and scans use it: the watcher goes on locking."""

    def keep_running() -> None:
        while True:
            try:
                target()
                return
            except Exception as e:  # noqa: BLE001 - whatever it is, this thread must go on
                log.error(
                    '%s stopped on an unexpected error (%s: %s); starting it again',
                    threading.current_thread().name,
                    type(e).__name__,
                    describe(e),
                )
                if stop.wait(RESTART_PAUSE_S):
                    return

    thread = threading.Thread(target=keep_running, name=name, daemon=True)
    thread.start()
    return thread


def excluded(patterns: Tuple[str, ...], path: str) -> bool:
    """True when the file's name matches one of the shell patterns (`*.tmp`, `~$*`)."""
    if not patterns:  # the common case, once per event: no name to work out
        return False
    name = posixpath.basename(path.rstrip('/'))
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def parse_event(event: Any) -> Optional[Tuple[str, str, str]]:
    """(type, path relative to the watched directory, file id or '') of a well-formed event;
    None for anything else. The path must stay inside the watched directory and the id be a
    number, for both end up in REST calls."""
    if not isinstance(event, dict):
        return None
    kind, relative, spine = event.get('type'), event.get('path', ''), event.get('spine') or []
    if not isinstance(kind, str) or not isinstance(relative, str) or not isinstance(spine, list):
        return None
    for part in spine:
        if not isinstance(part, str):
            return None
    file_id = spine[-1] if spine else ''
    if file_id and not FILE_ID.fullmatch(file_id):
        return None
    if relative.startswith('/') or '..' in relative.split('/'):
        return None
    return kind, relative, file_id


def _excerpt(value: Any, limit: int = 200) -> str:
    text = json.dumps(value)  # one line, whatever the value holds
    return text if len(text) <= limit else text[:limit] + '...'
