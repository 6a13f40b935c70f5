"""Cluster calls off the window's thread.

One worker thread runs the calls in order (an SDK client is one connection, so they must not
overlap); finished results wait in a queue until the window's own thread collects them with
deliver(), since Tk may only be touched from the thread that created it. The worker is a daemon
thread, so closing the window quits at once even while a call waits for a network timeout.
"""

import logging
import queue
import threading
from typing import Callable, TypeVar

from common.errors import TRANSLATABLE, ToolError, translate

log = logging.getLogger(__name__)

T = TypeVar('T')


def as_tool_error(exc: BaseException) -> ToolError:
    """Any failure of a background call as the one line the window shows."""
    if isinstance(exc, ToolError):
        return exc
    if isinstance(exc, TRANSLATABLE):
        return translate(exc)
    log.debug('unexpected failure in a background call', exc_info=exc)
    return ToolError(f'unexpected {type(exc).__name__}: {exc}')


class BackgroundJobs:
    def __init__(self) -> None:
        self._todo: 'queue.SimpleQueue' = queue.SimpleQueue()
        self._finished: 'queue.SimpleQueue' = queue.SimpleQueue()
        self._pending = 0  # submitted and not yet delivered; only touched by the window's thread
        self._thread = threading.Thread(target=self._work, name='lockmanager-cluster', daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def submit(
        self, work: Callable[[], T], on_done: Callable[[T], None], on_error: Callable[[ToolError], None]
    ) -> None:
        self._pending += 1
        self._todo.put((work, on_done, on_error))

    def _work(self) -> None:
        while True:
            job = self._todo.get()
            if job is None:
                return
            work, on_done, on_error = job
            try:
                self._finished.put((on_done, work()))
            except BaseException as exc:  # noqa: BLE001 - every failure must reach the window
                self._finished.put((on_error, as_tool_error(exc)))

    def deliver(self) -> int:
        """Run the callbacks of the calls that finished; call it from the window's thread."""
        delivered = 0
        while True:
            try:
                callback, value = self._finished.get_nowait()
            except queue.Empty:
                return delivered
            self._pending -= 1
            delivered += 1
            callback(value)

    def shutdown(self) -> None:
        self._todo.put(None)
