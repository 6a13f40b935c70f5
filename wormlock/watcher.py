"""The watch loop: notify stream -> schedule -> worker pool -> locks, with catch-up scans.

Nothing may be missed: a catch-up scan runs after every (re)connect, once the stream is open, and
every --rescan-every seconds, so changes made while the watcher was down or disconnected are found.
"""

import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field

from qumulo.lib.request import RequestError

from common.errors import AUTH, NOT_FOUND, FAILURE, ToolError
from .schedule import Schedule
from .stream import ChangeStream, StreamEnded, StreamError
from .walk import DIRECTORY, walk_files

log = logging.getLogger(__name__)

DEFAULT_EVENTS = ('child_file_added', 'child_data_written', 'child_file_moved_to')
# With --settle, these restart the quiet-period clock of a file already waiting.
ACTIVITY_EVENTS = frozenset({'child_data_written', 'child_size_changed', 'child_mtime_changed',
                             'child_file_moved_to', 'child_file_added'})
ALL_EVENTS = (
    'child_acl_changed', 'child_atime_changed', 'child_btime_changed', 'child_mtime_changed',
    'child_data_written', 'child_dir_added', 'child_dir_removed', 'child_dir_moved_from',
    'child_dir_moved_to', 'child_file_added', 'child_file_removed', 'child_file_moved_from',
    'child_file_moved_to', 'child_extra_attrs_changed', 'child_size_changed',
    'child_owner_changed', 'child_group_changed',
)


class Shutdown(Exception):
    """Raised in the main thread by SIGTERM/SIGINT to leave the stream read."""


@dataclass
class WatchOptions:
    directory_path: str = None
    directory_id: str = None
    recursive: bool = False
    events: tuple = DEFAULT_EVENTS
    interval_s: float = 15.0
    settle_s: float = None
    workers: int = 8
    rescan_every_s: float = None
    backoff_max_s: float = 60.0


@dataclass
class Backoff:
    """Exponential backoff with full jitter, so many watchers do not reconnect in step."""

    base_s: float = 0.5
    max_s: float = 60.0
    attempt: int = field(default=0)

    def next(self):
        delay = random.uniform(0, min(self.max_s, self.base_s * 2 ** self.attempt))
        self.attempt += 1
        return delay

    def reset(self):
        self.attempt = 0


class Watcher:
    def __init__(self, client, config, options, locker, audit, clock):
        self.client = client
        self.config = config
        self.options = options
        self.locker = locker
        self.audit = audit
        self.clock = clock
        self.schedule = Schedule()
        self.directory_id = None
        self.directory_path = None
        self._stop = threading.Event()
        self._rescan_wanted = threading.Event()
        self._local = threading.local()
        self._threads = []
        self._stream = None

    # --- start ---------------------------------------------------------------------------------
    def resolve_directory(self):
        opts = self.options
        try:
            attrs = self.client.fs.get_file_attr(path=opts.directory_path, id_=opts.directory_id)
        except RequestError as e:
            if e.status_code == 404:
                what = opts.directory_path or f'file id {opts.directory_id}'
                raise ToolError(f'the directory {what} does not exist on the cluster', NOT_FOUND)
            raise
        if attrs['type'] != DIRECTORY:
            raise ToolError(f'{attrs["path"]} is not a directory: give the directory to watch', FAILURE)
        self.directory_id, self.directory_path = attrs['id'], attrs['path'].rstrip('/') or '/'
        return attrs

    def check_recursion_allowed(self):
        if not self.options.recursive:
            return
        mode = self.client.fs.get_notify_settings().get('recursive_mode', 'ENABLED')
        if mode != 'ENABLED':
            raise ToolError(f'--recursive needs recursive change notify, but the cluster\'s recursive_mode '
                            f'is {mode}; enable it (qq fs_set_notify_settings) or watch without --recursive',
                            FAILURE)

    def start_workers(self):
        for n in range(self.options.workers):
            self._spawn(self._work, f'lock-worker-{n}')
        self._spawn(self._scan_loop, 'catch-up-scan')

    def _spawn(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _worker_client(self):
        # One RestClient holds one connection: each thread gets its own, sharing the session.
        if not hasattr(self._local, 'client'):
            self._local.client = self.client.clone()
        return self._local.client

    # --- the stream (main thread) --------------------------------------------------------------
    def run(self):
        """Watch until stop(); reconnects with backoff on a dropped stream, network error or 5xx."""
        backoff = Backoff(max_s=self.options.backoff_max_s)
        types = set(self.options.events)
        if self.options.settle_s:
            types |= ACTIVITY_EVENTS
        types |= {'child_file_removed'}
        while not self._stop.is_set():
            try:
                token = self.client.credentials.bearer_token
                with ChangeStream(self.config, token, self.directory_id, self.options.recursive, types,
                                  self.clock) as stream:
                    self._stream = stream
                    log.info('watching %s%s for changes', self.directory_path,
                             ' and everything below it' if self.options.recursive else '')
                    backoff.reset()
                    self.request_rescan()
                    for batch in stream.batches():
                        self.on_events(batch)
            except StreamEnded as e:
                if self._stop.is_set():
                    break
                log.warning('%s; reconnecting', e)
            except StreamError as e:
                self._on_stream_error(e)
            except OSError as e:
                log.warning('cannot reach the cluster for the notify stream (%s); retrying', e)
            finally:
                self._stream = None
            if not self._stop.is_set():
                self._stop.wait(backoff.next())

    def _on_stream_error(self, error):
        if error.status == 401:
            log.info('the notify stream needs a new session; logging in again')
            try:
                self.client.auth.who_am_i()  # the client logs in again on this 401
            except RequestError as e:
                if e.status_code == 401:
                    raise ToolError('the cluster no longer accepts our credentials (session or access '
                                    'token rejected)', AUTH)
                raise
            return
        if error.status >= 500 or error.status == 0:
            log.warning('the notify request failed (%s %s); retrying', error.status or '', error)
            return
        raise ToolError(f'the cluster refused to watch {self.directory_path}: {error}', FAILURE)

    def on_events(self, batch):
        settle = self.options.settle_s
        delay = settle if settle else self.options.interval_s
        for event in batch:
            kind = event.get('type')
            spine = event.get('spine') or ['']
            file_id = str(spine[-1] or '')
            path = self._cluster_path(event.get('path', ''))
            if kind in ('child_file_removed', 'self_removed'):
                if file_id:
                    self.schedule.forget(file_id)
                if kind == 'self_removed':
                    log.error('the watched directory %s was removed', self.directory_path)
                continue
            if not file_id:
                file_id = self._id_of(path)
                if not file_id:
                    continue
            if kind in self.options.events:
                self.schedule.touch(file_id, path, delay, restart=bool(settle))
            elif settle and kind in ACTIVITY_EVENTS:
                self.schedule.restart_clock(file_id, settle)

    def _cluster_path(self, relative):
        return os.path.join(self.directory_path, relative) if relative else self.directory_path

    def _id_of(self, path):
        try:
            return self._worker_client().fs.get_file_attr(path=path)['id']
        except RequestError:
            return ''  # gone already: nothing to lock (a temporary name, for instance)

    # --- workers -------------------------------------------------------------------------------
    def _work(self):
        while True:
            pending = self.schedule.take()
            if pending is None:
                return
            try:
                outcome = self.locker.process(self._worker_client(), pending)
            except Exception as e:  # the network, a malformed reply: keep the file for later
                log.warning('could not lock %s (%s); will retry', pending.path or pending.file_id, e)
                self.schedule.defer(pending, 5.0, pending.size_seen)
                self.schedule.finished(pending.file_id)
                continue
            if outcome.result == 'unsettled':
                self.schedule.defer(pending, outcome.retry_in, outcome.size)
            else:
                self._report(outcome)
            self.schedule.finished(pending.file_id)

    def _report(self, outcome):
        self.audit.record(outcome)
        where = outcome.path or f'file id {outcome.file_id}'
        if outcome.result == 'locked':
            log.info('locked %s (retention until %s, legal hold %s)', where, outcome.retention_until,
                     outcome.legal_hold)
        elif outcome.result == 'would-lock':
            log.info('dry run: would lock %s (retention until %s, legal hold %s)', where,
                     outcome.retention_until, outcome.legal_hold)
        elif outcome.result == 'failed':
            log.error('failed to lock %s: %s', where, outcome.error)
        else:
            log.debug('%s: %s', where, outcome.result)

    # --- catch-up scans ------------------------------------------------------------------------
    def request_rescan(self):
        self._rescan_wanted.set()

    def _scan_loop(self):
        while not self._stop.is_set():
            self._rescan_wanted.wait(self.options.rescan_every_s)
            if self._stop.is_set():
                return
            self._rescan_wanted.clear()
            try:
                self.scan_once()
            except Exception as e:
                log.warning('catch-up scan stopped early (%s); it runs again after the next reconnect', e)

    def scan_once(self):
        """Queue every file in the tree: the workers skip those already locked."""
        started, count = time.monotonic(), 0
        for attrs in walk_files(self._worker_client(), self.directory_id, self.options.recursive,
                                self._stop.is_set):
            self.schedule.touch(attrs['id'], attrs['path'], 0, restart=False, source='scan')
            count += 1
        log.info('catch-up scan of %s: %d files checked in %.1f s', self.directory_path, count,
                 time.monotonic() - started)
        return count

    # --- stop ----------------------------------------------------------------------------------
    def stop(self, close_stream=True):
        """Ask every loop to end. From a signal handler pass close_stream=False and raise
        instead: closing the stream under the read it interrupted would break that read."""
        self._stop.set()
        self._rescan_wanted.set()
        stream = self._stream
        if close_stream and stream is not None:
            stream.close()

    def drain(self, timeout):
        """Let the workers finish what is in flight (files not yet due wait for the next start's scan)."""
        self.schedule.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
