"""Progress of a long task, written to its queue row at most twice a second (not once per file)."""

import time
from typing import Callable, Optional

from pytarchive.taskqueue import TaskContext

INTERVAL_S = 0.5


class Progress:
    def __init__(
        self, ctx: TaskContext, step: str, bytes_total: Optional[int] = None, files_total: Optional[int] = None
    ):
        self.ctx = ctx
        self.bytes_done = 0
        self.files_done = 0
        self._shown = 0.0
        ctx.progress(step=step, bytes_done=0, files_done=0, bytes_total=bytes_total, files_total=files_total)

    def add(self, size: int = 0, files: int = 0) -> None:
        self.bytes_done += size
        self.files_done += files
        if time.monotonic() - self._shown >= INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        self._shown = time.monotonic()
        self.ctx.progress(bytes_done=self.bytes_done, files_done=self.files_done)

    def following(self, ctx: Optional[TaskContext] = None) -> Callable[[int], None]:
        """An on_chunk callback for one big file: progress as it is copied, and (with ctx) a stop
        request honoured between its buffers rather than after the whole file."""

        def on_chunk(size: int) -> None:
            self.add(size)
            if ctx is not None:
                ctx.checkpoint()

        return on_chunk

    def file_done(self, size: int, started_at: int) -> None:
        """One file of `size` bytes finished; started_at: bytes_done before it (chunks counted already)."""
        self.add(size - (self.bytes_done - started_at), files=1)
