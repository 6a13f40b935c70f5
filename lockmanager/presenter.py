"""Everything the lock manager window does, without the window: tested with no screen.

The Tk view (lockmanager.gui) only draws and forwards clicks here. The presenter decides what the
table shows (filter, sort, which rows are in view), which rows are selected, what a close closes
(selection -> ClosePlan or SessionPlan) and whether the user may close at all, what the status bar
and the details pane say, when the auto-refresh is due, and what the Connect dialog connects to;
every cluster call runs through BackgroundJobs so the window never waits on the network.
"""

import os
import time
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Callable, FrozenSet, Iterable, List, Optional, Protocol, Sequence, Set, Tuple, Union

from common.config import DEFAULT_PORT, ClusterConfig, ConfigError, write_cluster_config
from common.errors import ToolError
from lockmanager.closing import ClosePlan, CloseOutcome, SessionPlan, summary
from lockmanager.cluster import (
    HANDLE_WRITE,
    SESSION_READ,
    SESSION_WRITE,
    ConnectingCluster,
    Snapshot,
    without_cyclic_gc,
)
from lockmanager.export import save_csv
from lockmanager.jobs import BackgroundJobs
from lockmanager.model import (
    COLUMNS,
    SESSION_COLUMNS,
    HandleRow,
    SessionRow,
    duration_text,
    matches_text,
    plural,
    short_mode,
    since_text,
    sort_rows,
    sort_sessions,
)

FILTER_DELAY_S = 0.15  # typing pauses this long before 20,000 rows are filtered again
FAILURES_LISTED = 15
ROWS_IN_VIEW = 40  # until the view says how many rows fit
EXTRA_ROWS = 2  # drawn below the last whole row, so that a partly shown one is never blank
WHEEL_ROWS = 3  # rows a mouse wheel notch scrolls
TITLE = 'Qumulo Lock Manager'

Plan = Union[ClosePlan, SessionPlan]


class Source(Protocol):
    def fetch(self) -> Snapshot: ...

    def close(self, rows: Sequence[HandleRow]) -> List[CloseOutcome]: ...

    def close_sessions(self, rows: Sequence[SessionRow]) -> List[CloseOutcome]: ...


@dataclass(frozen=True)
class Page:
    """What the virtual table draws: only the rows in view, and where they are in the whole."""

    rows: Sequence[HandleRow]
    first: int  # index of rows[0] among the rows shown
    total: int  # rows shown (filtered), of which these are a part
    in_view: int  # whole rows that fit the table
    selected: FrozenSet[int]  # positions in rows
    cursor: Optional[int]  # position in rows of the row the keys move from, if drawn

    @property
    def scroll(self) -> Tuple[float, float]:
        """The scrollbar's slider: the part of the whole in view."""
        if not self.total:
            return (0.0, 1.0)
        return (self.first / self.total, min(1.0, (self.first + self.in_view) / self.total))


class View(Protocol):
    def show_rows(self, page: Page) -> None: ...

    def set_headings(self, headings: Sequence[Tuple[str, str]]) -> None: ...

    def show_sessions(self, rows: Sequence[SessionRow], selected: Set[int], note: str) -> None: ...

    def set_session_headings(self, headings: Sequence[Tuple[str, str]]) -> None: ...

    def set_permissions(self, close_refusal: str, session_refusal: str) -> None: ...

    def show_details(self, details: Sequence[Tuple[str, str]]) -> None: ...

    def copy_text(self, text: str) -> None: ...

    def set_title(self, text: str) -> None: ...

    def ask_connection(self, form: 'ConnectForm', problem: str) -> None: ...

    def set_busy(self, busy: bool, text: str) -> None: ...

    def set_status(self, text: str) -> None: ...

    def show_error(self, title: str, message: str) -> None: ...

    def confirm(self, title: str, message: str) -> bool: ...

    def ask_save_path(self) -> Optional[str]: ...


# --- the Connect dialog ----------------------------------------------------------------------------

FORM_ORIGIN = 'the Connect dialog'  # where a login failure tells the user to check the credentials


@dataclass(frozen=True)
class ConnectForm:
    """The Connect dialog's fields, as typed."""

    host: str = ''
    port: str = str(DEFAULT_PORT)
    username: str = ''
    password: str = ''
    access_token: str = ''
    ca_bundle: str = ''

    @classmethod
    def of(cls, config: Optional[ClusterConfig]) -> 'ConnectForm':
        """Filled from the config in use; the secrets are typed again (they are never shown)."""
        if config is None:
            return cls()
        return cls(config.host, str(config.port), config.username or '', '', '', config.ca_bundle or '')

    @classmethod
    def field_names(cls) -> Tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def problem(self) -> str:
        """What is wrong with the fields, in words for the dialog; '' when they can be used."""
        if not self.host.strip():
            return "Enter the cluster's host name or address."
        port = self.port.strip()
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            return f'The port must be a number from 1 to 65535, not {port!r}.' if port else 'Enter the port.'
        if not self.access_token.strip() and not (self.username.strip() and self.password):
            return 'Enter a user and password, or an access token.'
        bundle = self.ca_bundle.strip()
        if bundle and not os.path.isfile(os.path.expanduser(bundle)):
            return f'The CA bundle {bundle} is not a file.'
        return ''

    def config(self) -> ClusterConfig:
        """The ClusterConfig these fields make (check problem() first). The password is kept exactly
        as typed, spaces and all, as --configure keeps it."""
        bundle = self.ca_bundle.strip()
        return ClusterConfig(
            host=self.host.strip(),
            port=int(self.port.strip()),
            username=self.username.strip() or None,
            password=self.password or None,
            access_token=self.access_token.strip() or None,
            ca_bundle=os.path.abspath(os.path.expanduser(bundle)) if bundle else None,
            path=FORM_ORIGIN,
        )


# --- the rows ----------------------------------------------------------------------------------


def row_details(row: HandleRow) -> List[Tuple[str, str]]:
    """Every field of a row, for the details pane."""
    locks = str(row.byte_range_locks)
    if row.byte_range_modes:
        locks += f' ({"/".join(short_mode(m) for m in row.byte_range_modes)})'
    return [
        ('Path', row.path),
        ('File ID', row.file_id),
        ('Share', row.share or '—'),
        ('User', row.user),
        ('Auth ID', row.auth_id),
        ('Client', row.client or '—'),
        ('Host name', row.host or '—'),
        ('Access', row.access),
        ('Share modes', ', '.join(short_mode(m) for m in row.share_modes) or 'none'),
        ('Byte-range locks', locks),
        ('Open since', since_text(row.opened) or 'unknown'),
        ('Idle', duration_text(row.idle_s) or 'unknown'),
        ('Handle location', row.location),
    ]


def _session_matches(row: SessionRow, text: str) -> bool:
    text = text.casefold()
    return any(text in value.casefold() for value in (row.user, row.client, row.host))


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
        # No cells built here: the virtual table draws only the rows in view, and builds theirs.
        with without_cyclic_gc():
            rows = sort_rows(snapshot.rows, sort_key, descending)
            return cls(snapshot, rows, sort_key, descending, _totals(snapshot))


@dataclass
class _Activity:
    fetching: bool = False
    closing: int = 0  # handles or sessions being closed
    noun: str = 'handle'

    @property
    def busy(self) -> bool:
        return self.fetching or bool(self.closing)

    def text(self) -> str:
        if self.closing:
            return f'Closing {plural(self.closing, self.noun)}…'
        return 'Listing handles…' if self.fetching else ''


class LockManagerPresenter:
    # clock: the tests pass one they move by hand, to reach the filter's pause and the auto-refresh.
    # source None: not connected yet (no config file); the first refresh asks for a cluster.
    # connect: makes a source of what the Connect dialog gives.
    def __init__(
        self,
        source: Optional[Source],
        clock: Callable[[], float] = time.monotonic,
        auto_refresh_s: float = 0,
        config: Optional[ClusterConfig] = None,
        config_path: str = '',
        problem: str = '',
        connect: Callable[[ClusterConfig], Source] = ConnectingCluster,
    ):
        self.source = source
        self.config = config
        self.config_path = config_path  # where the Connect dialog's Save writes
        self.jobs = BackgroundJobs()
        self.clock = clock
        self.view: Optional[View] = None
        self.snapshot: Optional[Snapshot] = None
        self.filter_text = ''
        self.sort_key = 'path'
        self.descending = False
        self.selected: Set[str] = set()  # row keys
        self.visible: List[HandleRow] = []  # filtered and sorted: the whole table
        self.first = 0  # index in visible of the first row in view
        self.in_view = ROWS_IN_VIEW
        self.session_sort_key = 'user'
        self.session_descending = False
        self.sessions_visible: List[SessionRow] = []
        self.sessions_selected: Set[str] = set()  # session keys
        self.auto_refresh_s = auto_refresh_s
        self.note = 'Not listed yet: press List Locks.'  # the last thing that happened
        self._connect = connect
        self._connection = 0  # counts connections: a listing of an earlier one is dropped
        self._startup_problem = problem  # why there is no source yet, for the Connect dialog
        self._sorted: List[HandleRow] = []
        self._index: dict = {}  # row key -> index in visible
        self._anchor: Optional[str] = None  # where a shift-click range starts
        self._cursor: Optional[str] = None  # the row the keys move from and the details show
        self._totals = ''
        self._activity = _Activity()
        self._filter_due: Optional[float] = None
        self._last_listed: Optional[float] = None
        self._last_error = ''
        if source is None:
            self.note = f'Not connected: {problem}' if problem else 'Not connected: use File > Connect….'

    def attach(self, view: View) -> None:
        self.view = view
        view.set_title(self.title)
        self._show_headings()
        self._show_session_headings()
        self._show_permissions()
        self._show_sessions()
        self._show_page()
        self._update_status()

    @property
    def title(self) -> str:
        return f'{TITLE}: {self.config.host}' if self.config else TITLE

    # --- connecting ------------------------------------------------------------------------------
    def ask_connection(self, problem: str = '') -> None:
        """File > Connect…, or a refresh with no cluster yet: the Connect dialog."""
        if self.view:
            self.view.ask_connection(ConnectForm.of(self.config), problem or self._startup_problem)
        self._startup_problem = ''

    def connect(self, form: ConnectForm, save: bool) -> str:
        """The dialog's Connect (for this run) or Save (also written to the config file, as
        --configure writes it): '' when done and listing, else what is wrong, for the dialog."""
        problem = form.problem()
        if problem:
            return problem
        config = form.config()
        if save:
            try:
                config = write_cluster_config(self.config_path, config)
            except ConfigError as exc:
                return exc.message
        self.config = config
        self.source = self._connect(config)
        self._startup_problem = ''
        self._connection += 1
        self._activity.fetching = False  # a listing of the old cluster still running is dropped
        self.snapshot, self._sorted, self._totals = None, [], ''
        self.selected, self.sessions_selected = set(), set()
        self._cursor = self._anchor = None
        self._last_error = ''
        self.note = f'Saved to {self.config_path}.' if save else ''
        if self.view:
            self.view.set_title(self.title)
        self._show_permissions()
        self._show_rows(reset=True)
        self._show_sessions()
        self.refresh()
        return ''

    # --- listing ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """List from the cluster (in the background); a refresh already running is enough."""
        if self.source is None:
            self.ask_connection()
            return
        if self._activity.fetching:
            return
        self._activity.fetching = True
        self._show_busy()
        key, descending, source, connection = self.sort_key, self.descending, self.source, self._connection
        self.jobs.submit(
            lambda: _Listing.prepare(source.fetch(), key, descending),
            lambda listing: self._listed(listing, connection),
            lambda error: self._list_failed(error, connection),
        )

    def search(self) -> None:
        """The Search by Path button: filter by the typed text now, and list afresh."""
        self.apply_filter()
        self.refresh()

    def _listed(self, listing: '_Listing', connection: int) -> None:
        if connection != self._connection:
            return
        self._activity.fetching = False
        self._last_listed = self.clock()
        self._last_error = ''
        self.snapshot = snapshot = listing.snapshot
        self.selected &= {row.key for row in snapshot.rows}
        self.sessions_selected &= {row.key for row in snapshot.sessions}
        if (listing.sort_key, listing.descending) == (self.sort_key, self.descending):
            self._sorted = listing.rows
        else:  # a heading was clicked while listing
            self._sorted = sort_rows(snapshot.rows, self.sort_key, self.descending)
        self._totals = listing.totals
        if self.note.startswith(('error:', 'Not listed yet', 'Not connected')):
            self.note = ''  # stale now; a close or export summary stays until the next action
        self._show_permissions()
        self._show_rows()
        self._show_sessions()
        self._show_busy()

    def _list_failed(self, error: ToolError, connection: int) -> None:
        if connection != self._connection:
            return
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

    # --- may the user close? -----------------------------------------------------------------------
    @property
    def close_refusal(self) -> str:
        """Why the handle close buttons are off; '' when they are on."""
        if self.snapshot is not None and not self.snapshot.may_close:
            return f'read-only: {HANDLE_WRITE} is missing'
        return ''

    @property
    def session_refusal(self) -> str:
        """Why the Close Session button is off; '' when it is on."""
        if self.snapshot is None:
            return ''
        if not self.snapshot.may_list_sessions:
            return f'sessions are not listed: {SESSION_READ} is missing'
        if not self.snapshot.may_close_sessions:
            return f'read-only: {SESSION_WRITE} is missing'
        return ''

    def _show_permissions(self) -> None:
        if self.view:
            self.view.set_permissions(self.close_refusal, self.session_refusal)

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
        self._show_rows(reset=True)
        self._show_sessions()

    def sort_by(self, key: str) -> None:
        """A heading click: sort by that column (naturally: file2 before file10), or reverse the
        order when it already is."""
        self.descending = not self.descending if key == self.sort_key else False
        self.sort_key = key
        self._sorted = sort_rows(self._sorted, key, self.descending)
        self._show_headings()
        self._show_rows(reset=True)

    def heading_text(self, key: str) -> str:
        return _heading(COLUMNS, key, self.sort_key, self.descending)

    def _show_headings(self) -> None:
        if self.view:
            self.view.set_headings([(column.key, self.heading_text(column.key)) for column in COLUMNS])

    def _show_rows(self, reset: bool = False) -> None:
        """Filter again. reset (a new filter or order): the cursor row stays in view, or the top
        is; a listing keeps the place, so an auto-refresh never jumps."""
        text = self.filter_text.strip()
        self.visible = [row for row in self._sorted if matches_text(row, text)] if text else list(self._sorted)
        self._index = {row.key: n for n, row in enumerate(self.visible)}
        here = self._index.get(self._cursor) if self._cursor else None
        if reset:
            self.first = 0
            if here is not None:
                self._reveal(here)
        self.first = min(self.first, self._last_first())
        self._show_page()
        self._show_details()
        self._update_status()

    def _last_first(self) -> int:
        return max(0, len(self.visible) - self.in_view)

    def page(self) -> Page:
        rows = self.visible[self.first : self.first + self.in_view + EXTRA_ROWS]
        selected = frozenset(n for n, row in enumerate(rows) if row.key in self.selected)
        cursor = self._index.get(self._cursor) if self._cursor else None
        at = cursor - self.first if cursor is not None and 0 <= cursor - self.first < len(rows) else None
        return Page(rows, self.first, len(self.visible), self.in_view, selected, at)

    def _show_page(self) -> None:
        if self.view:
            self.view.show_rows(self.page())

    # --- scrolling (the table holds only the rows in view) ----------------------------------------
    def set_rows_in_view(self, rows: int) -> None:
        """The table was resized: this many whole rows fit."""
        rows = max(1, rows)
        if rows == self.in_view:
            return
        # The row the keys are on stays in view, and a table scrolled to its end stays there.
        at_end = self.first >= self._last_first()
        cursor = self._index.get(self._cursor) if self._cursor else None
        in_view = cursor is not None and self.first <= cursor < self.first + self.in_view
        self.in_view = rows
        self.first = self._last_first() if at_end else min(self.first, self._last_first())
        if in_view:
            self._reveal(cursor)
        self._show_page()

    def scroll_to(self, first: int) -> None:
        first = max(0, min(first, self._last_first()))
        if first != self.first:
            self.first = first
            self._show_page()

    def scroll_by(self, rows: int) -> None:
        self.scroll_to(self.first + rows)

    def scroll_pages(self, pages: int) -> None:
        self.scroll_by(pages * self.in_view)

    def scroll_wheel(self, notches: int) -> None:
        self.scroll_by(notches * WHEEL_ROWS)

    def scroll_to_fraction(self, fraction: float) -> None:
        """The scrollbar's slider dragged to this part of the whole."""
        self.scroll_to(round(fraction * len(self.visible)))

    def _reveal(self, index: int) -> None:
        if index < self.first:
            self.first = index
        elif index >= self.first + self.in_view:
            self.first = index - self.in_view + 1

    # --- selecting (by row key, so it outlives scrolling, sorting, filtering and refreshes) ------
    def click(self, position: Optional[int], toggle: bool = False, extend: bool = False) -> None:
        """A click on the row at this position of the page (None: below the last row). toggle:
        Ctrl-click adds or removes the row; extend: Shift-click selects from the last clicked one."""
        index = None if position is None else self.first + position
        if index is None or not 0 <= index < len(self.visible):
            if not (toggle or extend):
                self.selected.clear()
                self._selection_updated()
            return
        self._select_at(index, toggle, extend)
        self._selection_updated()

    def move_cursor(self, step: int, extend: bool = False) -> None:
        """Up/Down (1 row), Page Up/Down (a page), Home/End (all the way): the row there is
        selected (Shift: the range to it) and scrolled into view."""
        if not self.visible:
            return
        here = self._index.get(self._cursor) if self._cursor else None
        if here is None:  # from just outside the rows in view: Down picks the first, Up the last
            here = self.first - 1 if step > 0 else min(self.first + self.in_view, len(self.visible))
        target = max(0, min(here + step, len(self.visible) - 1))
        self._select_at(target, toggle=False, extend=extend)
        self._reveal(target)
        self._selection_updated()

    def select_all(self) -> None:
        self.selected = set(self._index)
        self._selection_updated()

    def select_keys(self, keys: Iterable[str]) -> None:
        """Select exactly these rows (by key)."""
        self.selected = set(keys)
        self._cursor = self._anchor = next(iter(sorted(self.selected, key=self._index.get)), None)
        self._selection_updated()

    def _select_at(self, index: int, toggle: bool, extend: bool) -> None:
        key = self.visible[index].key
        anchor = self._index.get(self._anchor) if self._anchor else None
        if extend and anchor is not None:
            low, high = sorted((anchor, index))
            keys = {row.key for row in self.visible[low : high + 1]}
            self.selected = self.selected | keys if toggle else keys
        elif toggle:
            self.selected ^= {key}
            self._anchor = key
        else:
            self.selected = {key}
            self._anchor = key
        self._cursor = key

    def _selection_updated(self) -> None:
        self._show_page()
        self._show_details()
        self._update_status()

    def selected_rows(self) -> List[HandleRow]:
        """The selected rows the filter shows (a hidden row is never closed by mistake)."""
        return [self.visible[n] for n in sorted(self._index[key] for key in self.selected if key in self._index)]

    @property
    def selected_count(self) -> int:
        return sum(1 for key in self.selected if key in self._index)

    def _cursor_row(self) -> Optional[HandleRow]:
        index = self._index.get(self._cursor) if self._cursor else None
        return None if index is None else self.visible[index]

    def row_at(self, position: int) -> Optional[HandleRow]:
        """The row drawn at this position of the page (for the path's tooltip)."""
        index = self.first + position
        return self.visible[index] if 0 <= position and index < len(self.visible) else None

    # --- the details pane and the row's menu --------------------------------------------------------
    def details(self) -> List[Tuple[str, str]]:
        """Every field of the row last clicked (or moved to); empty when none is shown."""
        row = self._cursor_row()
        return row_details(row) if row else []

    def _show_details(self) -> None:
        if self.view:
            self.view.show_details(self.details())

    def context_at(self, position: Optional[int]) -> bool:
        """A right-click on the row at this position: it becomes the menu's row (selected alone,
        unless it already was selected); False when there is no row there."""
        row = self.row_at(position) if position is not None else None
        if row is None:
            return False
        if row.key not in self.selected:
            self._select_at(self.first + position, toggle=False, extend=False)
        self._cursor = row.key
        self._selection_updated()
        return True

    def close_menu_row(self) -> None:
        row = self._cursor_row()
        if row:
            self._confirm_and_close(ClosePlan.of([row], 'this handle'))

    def close_menu_user(self) -> None:
        row = self._cursor_row()
        if row and self.snapshot:
            self._confirm_and_close(ClosePlan.for_users(self.snapshot.rows, {row.user}))

    def close_menu_client(self) -> None:
        row = self._cursor_row()
        if row and self.snapshot:
            if not row.client:
                self._say('This handle has no known client address.')
                return
            self._confirm_and_close(ClosePlan.for_clients(self.snapshot.rows, {row.client}))

    def copy_menu_path(self) -> None:
        row = self._cursor_row()
        if row and self.view:
            self.view.copy_text(row.path)
            self._say(f'Copied the path {row.path}.')

    # --- closing handles --------------------------------------------------------------------------
    def close_selected(self) -> None:
        rows = self._selection_or_hint()
        if rows:
            self._confirm_and_close(ClosePlan.of(rows, 'the selected handles'))

    def close_users_of_selection(self) -> None:
        rows = self._selection_or_hint()
        if rows and self.snapshot:
            self._confirm_and_close(ClosePlan.for_users(self.snapshot.rows, {row.user for row in rows}))

    def close_clients_of_selection(self) -> None:
        rows = self._selection_or_hint()
        if rows and self.snapshot:
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

    def _confirm_and_close(self, plan: Plan) -> None:
        sessions = isinstance(plan, SessionPlan)
        refusal = self.session_refusal if sessions else self.close_refusal
        if refusal:  # never warn about lost work to someone who cannot close anything
            self._say(refusal)
            return
        if not self.view or not self.view.confirm(plan.title, plan.question()):
            self._say('Nothing closed.')
            return
        source = self.source
        if source is None:  # not connected: nothing was listed, so nothing can be chosen
            return
        noun = 'session' if sessions else 'handle'
        self._activity.closing += len(plan)
        self._activity.noun = noun
        self._show_busy()
        close: Callable[[], Sequence[CloseOutcome]]
        if isinstance(plan, SessionPlan):
            session_rows = plan.rows
            close = lambda: source.close_sessions(session_rows)  # noqa: E731
        else:
            handle_rows = plan.rows
            close = lambda: source.close(handle_rows)  # noqa: E731
        self.jobs.submit(
            close,
            lambda outcomes: self._closed(plan, outcomes, noun),
            lambda error: self._close_failed(plan, error),
        )

    def _closed(self, plan: Plan, outcomes: Sequence[CloseOutcome], noun: str) -> None:
        self._activity.closing -= len(plan)
        closed = {o.row.location for o in outcomes if o.closed}
        if noun == 'session':
            self.sessions_selected -= closed
        else:
            self.selected -= {row.key for row in self._sorted if row.location in closed}
        self._say(summary(outcomes, noun))
        failures = [o.describe() for o in outcomes if not o.closed]
        if failures and self.view:
            more = len(failures) - FAILURES_LISTED
            text = '\n'.join(failures[:FAILURES_LISTED] + ([f'... and {more} more'] if more > 0 else []))
            self.view.show_error(f'Some {noun}s were not closed', text)
        self._show_busy()
        self.refresh()

    def _close_failed(self, plan: Plan, error: ToolError) -> None:
        self._activity.closing -= len(plan)
        self._last_error = ''  # a refused close always deserves its dialog
        self._fail('Nothing was closed', error)
        self._show_busy()

    # --- the Sessions tab -----------------------------------------------------------------------------
    @property
    def sessions_note(self) -> str:
        """What the Sessions tab says above its table ('' when it just lists)."""
        if self.snapshot is None:
            return 'Not listed yet.'
        if not self.snapshot.may_list_sessions:
            return f'Sessions are not shown: {self.snapshot.user} lacks {SESSION_READ}.'
        return ''

    def _show_sessions(self) -> None:
        rows = list(self.snapshot.sessions) if self.snapshot else []
        text = self.filter_text.strip()
        if text:
            rows = [row for row in rows if _session_matches(row, text)]
        self.sessions_visible = sort_sessions(rows, self.session_sort_key, self.session_descending)
        if self.view:
            selected = {n for n, row in enumerate(self.sessions_visible) if row.key in self.sessions_selected}
            self.view.show_sessions(self.sessions_visible, selected, self.sessions_note)
        self._update_status()

    def sort_sessions_by(self, key: str) -> None:
        self.session_descending = not self.session_descending if key == self.session_sort_key else False
        self.session_sort_key = key
        self._show_session_headings()
        self._show_sessions()

    def _show_session_headings(self) -> None:
        if self.view:
            self.view.set_session_headings(
                [
                    (c.key, _heading(SESSION_COLUMNS, c.key, self.session_sort_key, self.session_descending))
                    for c in SESSION_COLUMNS
                ]
            )

    def session_selection_changed(self, positions: Iterable[int]) -> None:
        """The Sessions table's own selection (it holds every session: there are few)."""
        self.sessions_selected = {self.sessions_visible[n].key for n in positions if n < len(self.sessions_visible)}
        self._update_status()

    def selected_sessions(self) -> List[SessionRow]:
        return [row for row in self.sessions_visible if row.key in self.sessions_selected]

    def close_selected_sessions(self) -> None:
        rows = self.selected_sessions()
        if not rows:
            self._say(self.session_refusal or 'Select one or more sessions first.')
            return
        self._confirm_and_close(SessionPlan.of(rows, 'the selected sessions'))

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

    @property
    def idle(self) -> bool:
        """No cluster call running or result waiting, and no typed filter waiting."""
        return not self.jobs.busy and not self.filter_pending

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
            if self.selected_count:
                parts.append(f'{self.selected_count:,} selected')
            if self.sessions_selected:
                parts.append(f'{plural(len(self.sessions_selected), "session")} selected')
            parts.append(f'listed at {_clock(snapshot.taken_at)} as {snapshot.user}')
            if self.close_refusal:
                parts.append(self.close_refusal)
            parts.extend(snapshot.notes)
        if self.auto_refresh_s:
            parts.append(f'auto-refresh every {self.auto_refresh_s:g} s')
        if self.note and self.note != self.close_refusal:
            parts.append(self.note)
        return '  ·  '.join(parts)


def _heading(columns: Sequence, key: str, sort_key: str, descending: bool) -> str:
    heading = next(column.heading for column in columns if column.key == key)
    if key != sort_key:
        return heading
    return f'{heading} {"▼" if descending else "▲"}'


def _totals(snapshot: Snapshot) -> str:
    # Counted once a listing: the status bar is redrawn on every selection change.
    rows = snapshot.rows
    text = (
        f'{plural(len(rows), "handle")} on {plural(len({r.file_id for r in rows}), "file")}, '
        f'{plural(len({r.user for r in rows}), "user")}, '
        f'{plural(len({r.client for r in rows if r.client}), "client")}'
    )
    return text + (f', {plural(len(snapshot.sessions), "session")}' if snapshot.sessions else '')


def _clock(moment: datetime) -> str:
    return moment.strftime('%H:%M:%S')
