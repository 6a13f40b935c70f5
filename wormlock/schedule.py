"""Files waiting to be locked, coalesced by file id.

Each event for a file moves its due time (with --settle: every change restarts the clock; with
--interval: the first event starts it). Worker threads take files as they fall due, so 10,000
files written at once are locked side by side, not one after another's sleep.
"""

import heapq
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

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


class Schedule:
    def __init__(self) -> None:
        self._pending: Dict[str, Pending] = {}
        self._heap: List[Tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._busy: Set[str] = set()  # ids a worker is locking now: a new event waits until it is done

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
            else:
                entry = self._pending[file_id] = Pending(file_id, path, due, 0, source=source)
            self._push(entry, due)

    def restart_clock(self, file_id: str, delay: float) -> None:
        """Activity on a file already waiting (its settle clock starts again); others are ignored."""
        with self._cond:
            entry = self._pending.get(file_id)
            if entry is not None:
                self._push(entry, time.monotonic() + delay)

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
                    self._busy.add(file_id)
                    return entry
                self._cond.wait(min(self._heap[0][0] - now, MAX_WAIT_S) if self._heap else None)
            return None

    def finished(self, file_id: str) -> None:
        with self._cond:
            self._busy.discard(file_id)
            waiting = self._pending.get(file_id)
            if waiting is not None:  # changed while it was being locked: look at it again
                self._push(waiting, waiting.due)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # Only the tests count the files waiting (events for one file coalesce into one entry); it
    # is kept so that they need not reach into the private dictionary.
    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)
