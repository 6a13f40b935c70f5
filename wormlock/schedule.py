"""Files waiting to be locked, coalesced by file id.

Each event for a file moves its due time (with --settle: every change restarts the clock; with
--interval: the first event starts it). Worker threads take files as they fall due, so 10,000
files written at once are locked side by side, not one after another's sleep.
"""

import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

# The longest a worker sleeps in one wait: a longer one (past threading.TIMEOUT_MAX) raises
# OverflowError; waking up now and then to look again costs nothing.
MAX_WAIT_S = 3600.0


@dataclass
class Pending:
    file_id: str
    path: str
    due: float
    seq: int
    size_seen: Optional[str] = None  # the size at the last attribute read, for the settle check
    source: str = 'event'  # 'event' or 'scan'
    # When it began to wait (monotonic): its first event, or the last that restarted its settle
    # clock. A retry after a failed call keeps it: the file is still not locked.
    since: float = field(default_factory=time.monotonic)


class Schedule:
    def __init__(self) -> None:
        self._pending: Dict[str, Pending] = {}
        self._heap: List[Tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        # The files a worker is locking now, with when it took each and its path: a new event
        # for one waits until it is done.
        self._busy: Dict[str, Tuple[float, str]] = {}

    def touch(self, file_id: str, path: str, delay: float, restart: bool = True, source: str = 'event') -> None:
        """A change to the file: it falls due after `delay` seconds (sooner if already due sooner
        and `restart` is False)."""
        due = time.monotonic() + delay
        with self._cond:
            entry = self._pending.get(file_id)
            if entry is not None:
                entry.path = path or entry.path
                if not restart and entry.due <= due:
                    return
                if restart:
                    entry.since = time.monotonic()
            else:
                entry = self._pending[file_id] = Pending(file_id, path, due, 0, source=source)
            self._push(entry, due)

    def restart_clock(self, file_id: str, delay: float) -> None:
        """Activity on a file already waiting (its settle clock starts again); others are ignored."""
        with self._cond:
            entry = self._pending.get(file_id)
            if entry is not None:
                entry.since = time.monotonic()
                self._push(entry, entry.since + delay)

    def defer(self, entry: Pending, delay: float, size_seen: Optional[str]) -> None:
        """A worker found the file still changing: check it again later."""
        with self._cond:
            current = self._pending.setdefault(entry.file_id, entry)
            current.size_seen = size_seen
            self._push(current, max(current.due, time.monotonic() + delay))

    def _push(self, entry: Pending, due: float) -> None:
        entry.due, entry.seq = due, next(self._seq)
        heapq.heappush(self._heap, (due, entry.seq, entry.file_id))
        self._cond.notify()

    def take(self) -> Optional[Pending]:
        """Blocks until a file is due and returns it; None once closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._heap:
                    due, seq, file_id = self._heap[0]
                    entry = self._pending.get(file_id)
                    if entry is None or entry.seq != seq or file_id in self._busy:
                        heapq.heappop(self._heap)  # superseded, or re-pushed when its worker is done
                        continue
                    if due > now:
                        break
                    heapq.heappop(self._heap)
                    del self._pending[file_id]
                    self._busy[file_id] = (now, entry.path)
                    return entry
                self._cond.wait(min(self._heap[0][0] - now, MAX_WAIT_S) if self._heap else None)
            return None

    def finished(self, file_id: str) -> None:
        with self._cond:
            self._busy.pop(file_id, None)
            waiting = self._pending.get(file_id)
            if waiting is not None:  # changed while it was being locked: look at it again
                self._push(waiting, waiting.due)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def waiting(self) -> Tuple[int, float]:
        """(files waiting to be locked, seconds the longest waiting of them has waited); the
        files a worker is locking now are not waiting."""
        now = time.monotonic()
        with self._cond:
            oldest = min((entry.since for entry in self._pending.values()), default=now)
            return len(self._pending), now - oldest

    def oldest_taken(self) -> Optional[Tuple[float, str]]:
        """(seconds, path or file id) of the file a worker has been locking longest; None when
        no worker holds one."""
        now = time.monotonic()
        with self._cond:
            if not self._busy:
                return None
            file_id, (taken, path) = min(self._busy.items(), key=lambda item: item[1][0])
            return now - taken, path or f'file id {file_id}'

    # Only the tests count the files waiting (events for one file coalesce into one entry); it
    # is kept so that they need not reach into the private dictionary.
    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)
