"""The task queue's running half: one worker thread per drive, each running tasks one at a time.

Workers take the oldest queued task that can run now (an atomic claim in storage, so two drives
never run the same task), run its handler, and record how it ended. A task can run when none of
its claims (its tapes and its path, see Registry.claims) is held by a task running on another
drive, nor by an older task still waiting: it stays queued, in its place, while later tasks that
need other things go ahead. Tasks that name no tape (scan, prepare, inventory) run beside any
other: scan only reads the changer's status (between moves, under the Changer's lock, and a tape in
a drive keeps the home slot recorded before its move), prepare and inventory do not touch the
library. Stopping sets one event: a handler sees it at its next checkpoint() and raises
TaskInterrupted, after releasing the drive in its own cleanup; a step already running (a format, a
copy of one file) is allowed to finish first.
"""

import contextlib
import logging
import threading
from typing import Any, Callable, ContextManager, Dict, FrozenSet, Iterator, List, Optional, Sequence, Set

from common.errors import ToolError
from pytarchive.state.db import DatabaseUnusable
from pytarchive.library.errors import LibraryError
from pytarchive.taskqueue.registry import Registry
from pytarchive.client.protocol import Task
from pytarchive.taskqueue.storage import TaskStorage

log = logging.getLogger(__name__)
IDLE_POLL_S = 5.0  # a safety net only: enqueue() wakes the workers at once


class TaskInterrupted(Exception):
    """Raised by checkpoint() when the service is stopping; the task is marked interrupted."""


class TaskCancelled(TaskInterrupted):
    """Raised by checkpoint() when `pytarchive cancel` asked for the task: it unwinds as an
    interrupted one does (drive emptied, nothing half-recorded) and is marked cancelled."""


class TaskContext:
    """What a handler gets: its task, the drive's resources, progress and stop checkpoints."""

    def __init__(
        self,
        task: Task,
        resources: Any,
        storage: TaskStorage,
        stopping: threading.Event,
        cancelled: Optional[Dict[int, str]] = None,
        lender: Optional[Callable[[], ContextManager[Any]]] = None,
    ):
        self.task = task
        self.resources = resources
        self._storage = storage
        self._stopping = stopping
        self._cancelled = cancelled if cancelled is not None else {}  # task id -> who asked
        self._lender = lender

    def other_drive(self) -> ContextManager[Any]:
        """Another drive's resources for the block, if one is idle (a copy reads one tape while it
        writes another); None when there is no other drive or every other one is busy."""
        return self._lender() if self._lender is not None else contextlib.nullcontext()

    def progress(self, **counters: Optional[object]) -> None:
        """bytes_done, bytes_total, files_done, files_total (as far as known) and step (e.g. 'verifying')."""
        self._storage.set_progress(self.task.id, **counters)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def checkpoint(self) -> None:
        """Call between steps: raises TaskInterrupted when the service is stopping, TaskCancelled
        when the task was cancelled."""
        if self._stopping.is_set():
            raise TaskInterrupted('the service was stopped before this task finished')
        by = self._cancelled.get(self.task.id)
        if by is not None:
            raise TaskCancelled(f'cancelled by {by} while it ran; stopped at a checkpoint, nothing half-recorded')


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, ToolError):
        return exc.message
    if isinstance(exc, LibraryError):
        return str(exc)
    return f'unexpected {type(exc).__name__}: {exc}'


class Consumer:
    def __init__(self, storage: TaskStorage, registry: Registry, resources: Sequence[Any]):
        self.storage = storage
        self.registry = registry
        self.resources = list(resources)
        self._stopping = threading.Event()
        self._pending = threading.Event()  # set by wake(): something may be waiting in the queue
        self._threads: List[threading.Thread] = []
        self._cancelled: Dict[int, str] = {}  # running task id -> who cancelled it (a dict's set is atomic)
        self._claimed: Dict[int, FrozenSet[str]] = {}  # running task id -> its claims (Registry.claims)
        self._claim_lock = threading.Lock()  # what runs and what it holds change together
        self._busy: Set[int] = set()  # drives running a task or lent to one
        self._drives: Dict[int, Any] = {}  # drive number -> its resources

    def start(self) -> None:
        for position, resources in enumerate(self.resources):
            index = getattr(resources, 'index', None)  # the changer's number of the drive
            drive = index if isinstance(index, int) else position
            self._drives[drive] = resources
            thread = threading.Thread(target=self._work, args=(resources, drive), name=f'worker-{drive}')
            thread.start()
            self._threads.append(thread)

    def cancel_running(self, task_id: int, by: str) -> None:
        """The running task stops at its next checkpoint and ends cancelled."""
        self._cancelled[task_id] = by

    def wake(self) -> None:
        """A task was queued: let an idle worker take it now."""
        self._pending.set()

    def request_stop(self) -> None:
        """Take no new task; running ones stop at their next checkpoint. Returns at once."""
        self._stopping.set()
        self.wake()

    def stop(self) -> None:
        """request_stop(), then wait for the workers to end."""
        self.request_stop()
        for thread in self._threads:
            thread.join()

    def _work(self, resources: Any, drive: int) -> None:
        try:
            while not self._stopping.is_set():
                # Cleared before looking, so a task queued between the look and the wait is not missed.
                self._pending.clear()
                task = self._claim(drive)
                if task is None:
                    self._pending.wait(IDLE_POLL_S)
                    continue
                try:
                    self._run(task, resources, drive)
                finally:
                    with self._claim_lock:
                        self._claimed.pop(task.id, None)
                        self._busy.discard(drive)
                    self.wake()  # a task waiting for this one's tape or path may run now
        except DatabaseUnusable as exc:
            # Nothing can be recorded any more; the service says why once, at CRITICAL.
            log.warning('worker stopped, no more tasks: %s', exc.message)

    def _claim(self, drive: int) -> Optional[Task]:
        """The oldest queued task whose claims are free, now running on this drive; None if none can run."""
        with self._claim_lock:
            if drive in self._busy:
                return None  # lent to a task running on another drive
            held: Set[str] = set().union(*self._claimed.values())
            found: Dict[int, FrozenSet[str]] = {}

            def runnable(task: Task) -> bool:
                claims = self.registry.claims(self.storage.db, task)
                if claims & held:
                    held.update(claims)  # a later task sharing any of them waits behind this one
                    return False
                found[task.id] = claims
                return True

            task = self.storage.claim_next(drive, runnable)
            if task is not None:
                self._claimed[task.id] = found[task.id]
                self._busy.add(drive)
            return task

    @contextlib.contextmanager
    def _lend(self, to_drive: int, task_id: int) -> Iterator[Any]:
        """An idle drive's resources for a task running on to_drive (None if none is idle): its
        worker takes no task until the block ends, and its `lent_to` names the task (for the
        summary). The tapes the borrower loads are its own claims."""
        with self._claim_lock:
            idle = [drive for drive in self._drives if drive not in self._busy and drive != to_drive]
            if idle:
                self._busy.add(idle[0])
        if not idle:
            yield None
            return
        lent = self._drives[idle[0]]
        lent.lent_to = task_id
        try:
            yield lent
        finally:
            lent.lent_to = None
            with self._claim_lock:
                self._busy.discard(idle[0])
            self.wake()

    def _run(self, task: Task, resources: Any, drive: int) -> None:
        log.info('task %d %s %s: started', task.id, task.kind, task.args)
        context = TaskContext(
            task, resources, self.storage, self._stopping, self._cancelled, lender=lambda: self._lend(drive, task.id)
        )
        try:
            result = self.registry.handler(task.kind)(context, **task.args)
        except TaskCancelled as exc:
            log.warning('task %d %s: %s', task.id, task.kind, exc)
            self.storage.mark_cancelled(task.id, str(exc))
        except TaskInterrupted as exc:
            log.warning('task %d %s: interrupted: %s', task.id, task.kind, exc)
            self.storage.mark_interrupted(task.id, str(exc))
        except Exception as exc:  # noqa: BLE001 - a failing task must never take the worker down
            if self.storage.db.problem:  # not the task's failure: it shows as interrupted once the file is back
                raise DatabaseUnusable(self.storage.db.problem) from None
            error = describe_failure(exc)
            if not isinstance(exc, (ToolError, LibraryError)):
                log.exception('task %d %s: unexpected error', task.id, task.kind)
            # CRITICAL: a logging.conf's SMTPHandler at CRITICAL, or [Email], mails it ("pytarchive: Task failed").
            log.critical(
                'task %d %s %s: failed: %s', task.id, task.kind, task.args, error, extra=failure_mail(task, error)
            )
            self.storage.mark_failed(task.id, error)
        else:
            log.info('task %d %s: done%s', task.id, task.kind, f': {result}' if result else '')
            self.storage.mark_done(task.id, result)
        finally:
            self._cancelled.pop(task.id, None)  # a cancel that came too late for the last checkpoint


def failure_mail(task: Task, error: str) -> Dict[str, str]:
    """The subject and advice of the mail a failed task sends: which task (id, kind, path, tape),
    and what an admin does next."""
    named = ' '.join(str(task.args[key]) for key in ('path', 'barcode') if task.args.get(key))
    return {
        'mail_subject': f'pytarchive: task {task.id} {task.kind}{" " + named if named else ""} failed',
        'mail_advice': (
            f'The error: {error}\n'
            f'What to do: fix its cause, then run it again with `pytarchive requeue {task.id}`; '
            f'`pytarchive queue` lists the tasks.'
        ),
    }
