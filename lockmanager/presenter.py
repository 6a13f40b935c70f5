"""Everything the lock manager window does, without the window: tested with no screen.

The Tk view (lockmanager.gui) only draws and forwards clicks here. The presenter decides what the
table shows (filter, sort), what a close closes (selection -> ClosePlan), what the status bar
says, when the auto-refresh is due, and runs every cluster call through BackgroundJobs so the
window never waits on the network.
"""

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, List, Optional, Protocol, Sequence, Set, Tuple

from common.errors import ToolError
from lockmanager.closing import ClosePlan, CloseOutcome, summary
from lockmanager.cluster import HANDLE_WRITE, Snapshot, without_cyclic_gc
from lockmanager.export import save_csv
from lockmanager.jobs import BackgroundJobs
from lockmanager.model import COLUMNS, HandleRow, matches_text, plural, sort_rows

FILTER_DELAY_S = 0.15  # typing pauses this long before 20,000 rows are filtered again
BATCH_ROWS = 2000  # rows the table takes per turn of the event loop
FAILURES_LISTED = 15

Cells = Tuple[str, ...]


class Source(Protocol):
    def fetch(self) -> Snapshot: ...

    def close(self, rows: Sequence[HandleRow]) -> List[CloseOutcome]: ...


class View(Protocol):
    def show_rows(self, rows: Sequence[HandleRow]) -> None: ...

    def set_headings(self, headings: Sequence[Tuple[str, str]]) -> None: ...

    def set_busy(self, busy: bool, text: str) -> None: ...

    def set_status(self, text: str) -> None: ...

    def show_error(self, title: str, message: str) -> None: ...

    def confirm(self, title: str, message: str) -> bool: ...

    def ask_save_path(self) -> Optional[str]: ...


class RowFeed:
    """Hands rows to the table in batches, so 20,000 rows never hold the window for long; a new
    feed makes the batches of an older one stop."""

    # batch: the tests feed a few rows in batches of three.
    def __init__(self, batch: int = BATCH_ROWS):
        self.batch = batch
        self.generation = 0
        self._rows: Sequence[HandleRow] = ()
        self._next = 0

    def start(self, rows: Sequence[HandleRow]) -> int:
        self.generation += 1
        self._rows, self._next = rows, 0
        return self.generation

    def next_batch(self, generation: int) -> Optional[List[Tuple[str, Cells]]]:
        """(item id, cells) for the next rows; None when done or when a newer feed started."""
        if generation != self.generation or self._next >= len(self._rows):
            return None
        batch = self._rows[self._next : self._next + self.batch]
        self._next += len(batch)
        return [(row.key, row.cells) for row in batch]

    def done(self, generation: int) -> bool:
        return generation != self.generation or self._next >= len(self._rows)


@dataclass(frozen=True)
class _Listing:
    """A listing made ready for the table on the worker thread, so the window only draws it."""

    snapshot: Snapshot
    rows: List[HandleRow]  # sorted
    sort_key: str
    descending: bool
    totals: str

    @classmethod
    def prepare(cls, snapshot: Snapshot, sort_key: str, descending: bool) -> '_Listing':
        with without_cyclic_gc():
            rows = sort_rows(snapshot.rows, sort_key, descending)
            for row in rows:
                row.cells  # noqa: B018 - built here rather than while the table fills
            return cls(snapshot, rows, sort_key, descending, _totals(snapshot.rows))


@dataclass
class _Activity:
    fetching: bool = False
    closing: int = 0  # handles being closed

    @property
    def busy(self) -> bool:
        return self.fetching or bool(self.closing)

    def text(self) -> str:
        if self.closing:
            return f'Closing {plural(self.closing, "handle")}…'
        return 'Listing handles…' if self.fetching else ''


class LockManagerPresenter:
    # clock: the tests pass one they move by hand, to reach the filter's pause and the auto-refresh.
    def __init__(self, source: Source, clock: Callable[[], float] = time.monotonic, auto_refresh_s: float = 0):
        self.source = source
        self.jobs = BackgroundJobs()
        self.clock = clock
        self.view: Optional[View] = None
        self.snapshot: Optional[Snapshot] = None
        self.filter_text = ''
        self.sort_key = 'path'
        self.descending = False
        self.selected: Set[str] = set()
        self.visible: List[HandleRow] = []
        self.auto_refresh_s = auto_refresh_s
        self.note = 'Not listed yet: press List Locks.'  # the last thing that happened
        self._sorted: List[HandleRow] = []
        self._totals = ''
        self._activity = _Activity()
        self._filter_due: Optional[float] = None
        self._last_listed: Optional[float] = None
        self._last_error = ''

    def attach(self, view: View) -> None:
        self.view = view
        self._show_headings()
        self._update_status()

    # --- listing ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """List from the cluster (in the background); a refresh already running is enough."""
        if self._activity.fetching:
            return
        self._activity.fetching = True
        self._show_busy()
        key, descending = self.sort_key, self.descending
        self.jobs.submit(
            lambda: _Listing.prepare(self.source.fetch(), key, descending), self._listed, self._list_failed
        )

    def search(self) -> None:
        """The Search by Path button: filter by the typed text now, and list afresh."""
        self.apply_filter()
        self.refresh()

    def _listed(self, listing: '_Listing') -> None:
        self._activity.fetching = False
        self._last_listed = self.clock()
        self._last_error = ''
        self.snapshot = snapshot = listing.snapshot
        self.selected &= {row.key for row in snapshot.rows}
        if (listing.sort_key, listing.descending) == (self.sort_key, self.descending):
            self._sorted = listing.rows
        else:  # a heading was clicked while listing
            self._sorted = sort_rows(snapshot.rows, self.sort_key, self.descending)
        self._totals = listing.totals
        if self.note.startswith('error:') or self.note.startswith('Not listed yet'):
            self.note = ''  # stale now; a close or export summary stays until the next action
        self._show_rows()
        self._show_busy()

    def _list_failed(self, error: ToolError) -> None:
        self._activity.fetching = False
        self._last_listed = self.clock()
        self._fail('Cannot list the SMB file handles', error)
        self._show_busy()

    def _fail(self, title: str, error: ToolError) -> None:
        self.note = f'error: {error.message}'
        self._update_status()
        # An auto-refresh failing again the same way says so in the status bar only.
        if error.message != self._last_error and self.view:
            self.view.show_error(title, error.message)
        self._last_error = error.message

    # --- what the table shows --------------------------------------------------------------------
    def filter_changed(self, text: str) -> None:
        """Typing in the filter box: applied once typing pauses (see tick)."""
        self.filter_text = text
        self._filter_due = self.clock() + FILTER_DELAY_S

    @property
    def filter_pending(self) -> bool:
        """Typed text not applied yet (typing has not paused). Only the window tests ask, to know
        when the table shows what was typed; kept here because only the presenter knows."""
        return self._filter_due is not None

    def apply_filter(self) -> None:
        """Filter by the typed text now (Return, Search by Path, or typing paused)."""
        self._filter_due = None
        self._show_rows()

    def sort_by(self, key: str) -> None:
        """A heading click: sort by that column, or reverse the order when it already is."""
        self.descending = not self.descending if key == self.sort_key else False
        self.sort_key = key
        self._sorted = sort_rows(self._sorted, key, self.descending)
        self._show_headings()
        self._show_rows()

    def heading_text(self, key: str) -> str:
        heading = next(column.heading for column in COLUMNS if column.key == key)
        if key != self.sort_key:
            return heading
        return f'{heading} {"▼" if self.descending else "▲"}'

    def _show_headings(self) -> None:
        if self.view:
            self.view.set_headings([(column.key, self.heading_text(column.key)) for column in COLUMNS])

    def _show_rows(self) -> None:
        text = self.filter_text.strip()
        self.visible = [row for row in self._sorted if matches_text(row, text)] if text else list(self._sorted)
        if self.view:
            self.view.show_rows(self.visible)
        self._update_status()

    def selection_changed(self, keys: Iterable[str]) -> None:
        self.selected = set(keys)
        self._update_status()

    def selected_rows(self) -> List[HandleRow]:
        return [row for row in self.visible if row.key in self.selected]

    # --- closing ---------------------------------------------------------------------------------
    def close_selected(self) -> None:
        rows = self._selection_or_hint()
        if rows:
            self._confirm_and_close(ClosePlan.of(rows, 'the selected handles'))

    def close_users_of_selection(self) -> None:
        rows = self._selection_or_hint()
        if rows:
            self._confirm_and_close(ClosePlan.for_users(self.snapshot.rows, {row.user for row in rows}))

    def close_clients_of_selection(self) -> None:
        rows = self._selection_or_hint()
        if rows:
            clients = {row.client for row in rows if row.client}
            if not clients:
                self._say('The selected handles have no known client address.')
                return
            self._confirm_and_close(ClosePlan.for_clients(self.snapshot.rows, clients))

    def _selection_or_hint(self) -> List[HandleRow]:
        rows = self.selected_rows()
        if not rows:
            self._say('Select one or more handles first.')
        return rows

    def _confirm_and_close(self, plan: ClosePlan) -> None:
        if not self.view or not self.view.confirm(plan.title, plan.question()):
            self._say('Nothing closed.')
            return
        self._activity.closing += len(plan)
        self._show_busy()
        self.jobs.submit(
            lambda: self.source.close(plan.rows),
            lambda outcomes: self._closed(plan, outcomes),
            lambda error: self._close_failed(plan, error),
        )

    def _closed(self, plan: ClosePlan, outcomes: Sequence[CloseOutcome]) -> None:
        self._activity.closing -= len(plan)
        closed = {o.row.location for o in outcomes if o.closed}
        self.selected -= {row.key for row in self._sorted if row.location in closed}
        self._say(summary(outcomes))
        failures = [o.describe() for o in outcomes if not o.closed]
        if failures and self.view:
            more = len(failures) - FAILURES_LISTED
            text = '\n'.join(failures[:FAILURES_LISTED] + ([f'... and {more} more'] if more > 0 else []))
            self.view.show_error('Some handles were not closed', text)
        self._show_busy()
        self.refresh()

    def _close_failed(self, plan: ClosePlan, error: ToolError) -> None:
        self._activity.closing -= len(plan)
        self._last_error = ''  # a refused close always deserves its dialog
        self._fail('Nothing was closed', error)
        self._show_busy()

    # --- export ----------------------------------------------------------------------------------
    def export_visible(self) -> None:
        if not self.view:
            return
        path = self.view.ask_save_path()
        if not path:
            return
        try:
            save_csv(self.visible, path)
        except OSError as exc:
            self._fail('Cannot export', ToolError(f'cannot write {path}: {exc.strerror or exc}'))
            return
        self._say(f'Exported {len(self.visible):,} rows to {path}.')

    # --- time ------------------------------------------------------------------------------------
    def set_auto_refresh(self, seconds: float) -> None:
        self.auto_refresh_s = max(0.0, seconds)
        self._update_status()

    def tick(self) -> None:
        """Called by the window every few tens of ms: hands over finished cluster calls, applies
        a filter once typing paused, and starts the auto-refresh when it is due."""
        self.jobs.deliver()
        now = self.clock()
        if self._filter_due is not None and now >= self._filter_due:
            self.apply_filter()
        if (
            self.auto_refresh_s
            and self._last_listed is not None
            and not self._activity.busy
            and now - self._last_listed >= self.auto_refresh_s
        ):
            self.refresh()

    def shutdown(self) -> None:
        self.jobs.shutdown()

    # --- status bar ------------------------------------------------------------------------------
    def _say(self, note: str) -> None:
        self.note = note
        self._update_status()

    def _show_busy(self) -> None:
        if self.view:
            self.view.set_busy(self._activity.busy, self._activity.text())

    def _update_status(self) -> None:
        if self.view:
            self.view.set_status(self.status_text())

    def status_text(self) -> str:
        parts = []
        snapshot = self.snapshot
        if snapshot is not None:
            parts.append(self._totals)
            if self.filter_text.strip():
                parts.append(f'{len(self.visible):,} shown')
            if self.selected:
                parts.append(f'{len(self.selected):,} selected')
            parts.append(f'listed at {_clock(snapshot.taken_at)} as {snapshot.user}')
            if not snapshot.may_close:
                parts.append(f'read-only: no {HANDLE_WRITE}')
            parts.extend(snapshot.notes)
        if self.auto_refresh_s:
            parts.append(f'auto-refresh every {self.auto_refresh_s:g} s')
        if self.note:
            parts.append(self.note)
        return '  ·  '.join(parts)


def _totals(rows: Sequence[HandleRow]) -> str:
    # Counted once a listing: the status bar is redrawn on every selection change.
    return (
        f'{plural(len(rows), "handle")} on {plural(len({r.file_id for r in rows}), "file")}, '
        f'{plural(len({r.user for r in rows}), "user")}, '
        f'{plural(len({r.client for r in rows if r.client}), "client")}'
    )


def _clock(moment: datetime) -> str:
    return moment.strftime('%H:%M:%S')
