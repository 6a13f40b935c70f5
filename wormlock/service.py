"""One service for every watched folder: a watch per folder, one schedule, one worker pool, one
audit log, and the policy of the folder each file is in.

Each folder's Watcher (watcher.py) reads its own stream and runs its own catch-up scans, and hands
files to the shared schedule; the workers here lock them under the most specific folder's policy
(policy.py). A SIGHUP reloads the policy file: folders added are watched, folders dropped are let
go, folders whose rules changed are watched again under the new rules, and every folder added or
changed gets a catch-up scan, so nothing written during the reload is missed.
"""

import collections
import logging
import queue
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

from common.auth import Client
from common.config import ClusterConfig
from common.errors import ToolError, describe, is_transient
from .audit import AuditLog
from .clock import ClusterClock
from .hooks import Hooks
from .locker import Locker, Outcome
from .policy import Folder, Folders
from .schedule import Pending, Schedule
from .watcher import LOCK_RETRY_S, Outage, Watcher, spawn

log = logging.getLogger(__name__)

LOCKED_REMEMBERED = 200_000  # the most recently locked file ids kept (a few MB)


class Service:
    def __init__(
        self,
        client: Client,
        config: ClusterConfig,
        folders: Sequence[Folder],
        audit: AuditLog,
        clock: Optional[ClusterClock],
        workers: int = 8,
        rescan_every_s: Optional[float] = None,
        dry_run: bool = False,
        hooks: Optional[Hooks] = None,
    ):
        self.client = client
        self.hooks = hooks or Hooks()  # the metrics and the systemd watchdog listen here
        self.config = config
        self.audit = audit
        self.clock = clock
        self.workers = workers
        self.rescan_every_s = rescan_every_s
        self.dry_run = dry_run
        self.schedule = Schedule()
        self.outage = Outage(self.hooks)
        self.folders = Folders(folders)
        self.watchers: Dict[str, Watcher] = {f.path: self.watcher_for(f) for f in folders}
        self._stop = threading.Event()
        self._local = threading.local()
        self._threads: List[threading.Thread] = []
        self._watch_threads: Dict[str, threading.Thread] = {}
        self._errors: 'queue.SimpleQueue[BaseException]' = queue.SimpleQueue()
        self._reload: Optional[Callable[[], Sequence[Folder]]] = None
        self._reload_wanted = threading.Event()
        self._locked: 'collections.OrderedDict[str, None]' = collections.OrderedDict()  # ids this process locked
        self._locked_lock = threading.Lock()

    def watcher_for(self, folder: Folder) -> Watcher:
        return Watcher(
            self.client,
            self.config,
            folder.watch_options(self.rescan_every_s),
            self.schedule,
            self.outage,
            self.clock,
            self.hooks,
        )

    # --- start ---------------------------------------------------------------------------------
    def check(self) -> None:
        """What the cluster can refuse for each folder, before anything is watched or locked."""
        for watcher in self.watchers.values():
            watcher.resolve_directory()
            watcher.check_watch_allowed()  # leaves the stream open for the watch
            try:
                watcher.check_recursion_allowed()
            except BaseException:
                self.close_opened_streams()
                raise

    def close_opened_streams(self) -> None:
        for watcher in self.watchers.values():
            watcher.close_opened_stream()

    def start(self) -> None:
        for n in range(self.workers):
            self._spawn(self._work, f'lock-worker-{n}')
        for path, watcher in self.watchers.items():
            self._start_watch(path, watcher)

    def _start_watch(self, path: str, watcher: Watcher) -> None:
        watcher.start_threads()
        thread = threading.Thread(target=self._watch, args=(watcher,), name=f'watch {path}', daemon=True)
        thread.start()
        self._watch_threads[path] = thread

    def _watch(self, watcher: Watcher) -> None:
        """One folder's stream. What waiting cannot fix (credentials, the folder gone) ends the
        whole service with its exit code: the unit starts it again and resolves every path anew."""
        try:
            watcher.run()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which exits with it
            if watcher.stopped:
                return  # its stream was closed under the read: let go on reload or at the stop
            if not isinstance(e, ToolError):
                log.error('the watch of %s stopped on an unexpected error (%s)', watcher.directory_path, describe(e))
            self._errors.put(e)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        self._threads.append(spawn(target, name, self._stop))

    def _worker_client(self) -> Client:
        # One RestClient holds one connection: each thread gets its own, sharing the session.
        if not hasattr(self._local, 'client'):
            self._local.client = self.client.clone()
        return self._local.client

    # --- the main thread -----------------------------------------------------------------------
    def run(self) -> None:
        """Wait until stop(), reloading the policy when asked; raises what ended a watch."""
        while not self._stop.is_set():
            try:
                raise self._errors.get(timeout=0.5)
            except queue.Empty:
                pass
            if self._reload_wanted.is_set():
                self._reload_wanted.clear()
                self._apply_reload()

    def on_reload(self, load: Callable[[], Sequence[Folder]]) -> None:
        """How a reload reads the folders again (the policy file); SIGHUP calls request_reload."""
        self._reload = load

    def request_reload(self) -> None:
        self._reload_wanted.set()  # an Event set is safe from a signal handler

    def _apply_reload(self) -> None:
        if self._reload is None:
            log.info('SIGHUP: no policy file to reload')
            return
        try:
            folders = list(self._reload())
        except ToolError as e:
            log.error('the policy file was not reloaded (%s); the folders keep their rules', e.message)
            return
        old = {f.path: f for f in self.folders}
        new = {f.path: f for f in folders}
        added = [p for p in new if p not in old]
        dropped = [p for p in old if p not in new]
        changed = [p for p in new if p in old and new[p] != old[p]]
        started: Dict[str, Watcher] = {}
        try:
            for path in added + changed:
                watcher = self.watcher_for(new[path])
                watcher.resolve_directory()
                watcher.check_watch_allowed()
                watcher.check_recursion_allowed()
                started[path] = watcher
        except Exception as e:  # noqa: BLE001 - a reload never ends the service: the old rules stay
            for watcher in started.values():
                watcher.close_opened_stream()
            reason = e.message if isinstance(e, ToolError) else describe(e)
            log.error('the policy file was not applied (%s); the folders keep their rules', reason)
            return
        # The new rules apply to files locked from now on, before the new watches open: a file
        # waiting already is locked under the rules of its folder as they now stand.
        self.folders = Folders(folders)
        for path in dropped + changed:
            self._stop_watch(path)
        for path, watcher in started.items():
            self.watchers[path] = watcher
            self._start_watch(path, watcher)  # its stream opens first, then its catch-up scan runs
        log.info(
            'policy reloaded: %d folders (%d added, %d changed, %d dropped)',
            len(folders),
            len(added),
            len(changed),
            len(dropped),
        )

    def _stop_watch(self, path: str) -> None:
        watcher = self.watchers.pop(path)
        watcher.stop()
        thread = self._watch_threads.pop(path, None)
        if thread is not None:
            thread.join(10)

    # --- workers -------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            pending = self.schedule.take()
            if pending is None:
                return
            try:
                self._lock_one(pending)
            except BaseException:
                # Whatever went wrong here, the file is tried again: never left taken for ever.
                self.schedule.defer(pending, LOCK_RETRY_S, pending.size_seen)
                raise
            finally:
                self.schedule.finished(pending.file_id)

    def _lock_one(self, pending: Pending) -> None:
        folder = self.folders.for_path(pending.path)
        if folder is None:
            log.debug('%s is in no watched folder any more: left alone', pending.path)
            return
        if folder.excludes(pending.path):
            log.debug('%s matches an exclude of %s: left alone', pending.path, folder.name)
            return
        started = time.monotonic()
        try:
            locker = Locker(folder.lock_policy(), self.clock, self.dry_run)
            outcome = locker.process(self._worker_client(), pending, at_once=pending.file_id not in self._locked)
        except Exception as e:  # noqa: BLE001 - the network, a malformed reply: keep the file for later
            if is_transient(e):
                self.outage.failed(describe(e), started)  # one line for the whole outage
            else:
                log.warning('could not lock %s (%s); will retry', pending.path or pending.file_id, describe(e))
            self.schedule.defer(pending, getattr(e, 'retry_after', None) or LOCK_RETRY_S, pending.size_seen)
            return
        self.outage.ended(started)
        if outcome.result == 'unsettled':
            self.schedule.defer(pending, outcome.retry_in, outcome.size)
        else:
            outcome.policy = folder.name
            if outcome.result == 'locked':
                self._remember_locked(pending.file_id)
            self._report(outcome)

    def _remember_locked(self, file_id: str) -> None:
        # Events for a file can still arrive after it was locked (writes made just before the
        # lock): those are read first, so they record it as already locked and push nothing.
        with self._locked_lock:
            self._locked[file_id] = None
            self._locked.move_to_end(file_id)
            while len(self._locked) > LOCKED_REMEMBERED:
                self._locked.popitem(last=False)

    def _report(self, outcome: Outcome) -> None:
        self.audit.record(outcome)
        self.hooks.reported(outcome)
        where = outcome.path or f'file id {outcome.file_id}'
        if outcome.result == 'locked':
            log.info(
                'locked %s (retention until %s, legal hold %s)', where, outcome.retention_until, outcome.legal_hold
            )
        elif outcome.result == 'would-lock':
            log.info(
                'dry run: would lock %s (retention until %s, legal hold %s)',
                where,
                outcome.retention_until,
                outcome.legal_hold,
            )
        elif outcome.result == 'failed':
            log.error('failed to lock %s: %s', where, outcome.error)
        else:
            log.debug('%s: %s', where, outcome.result)

    def dead_threads(self) -> List[str]:
        """The names of its threads and its watchers' that ended although not stopped (the watchdog's check)."""
        if self._stop.is_set():
            return []
        dead = [t.name for t in self._threads if not t.is_alive()]
        return dead + [name for watcher in list(self.watchers.values()) for name in watcher.dead_threads()]

    # --- stop ----------------------------------------------------------------------------------
    def stop(self, close_streams: bool = True) -> None:
        """Ask every loop to end; safe from a signal handler with close_streams=False."""
        self._stop.set()
        for watcher in list(self.watchers.values()):
            watcher.stop(close_stream=close_streams)

    def drain(self, timeout: float) -> None:
        """Let the workers finish what is in flight (files not yet due wait for the next start's scan)."""
        self.schedule.close()
        deadline = time.monotonic() + timeout
        for watcher in list(self.watchers.values()):
            watcher.join(max(0.0, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
