"""The lock manager window: Tk widgets and nothing else.

A humble view: it draws what LockManagerPresenter hands it and forwards every click, keystroke and
timer tick there. The only module that imports tkinter.

The Open files table is virtual: the Treeview holds only the rows in view (its items are named by
their position on the page), the scrollbar and the keys move the presenter's first row, and the
selection lives in the presenter, by row key; so 20,000 handles cost what 40 do.
"""

import logging
import tkinter as tk
import tkinter.font as tkfont
from tkinter import filedialog, messagebox, ttk
from types import TracebackType
from typing import Callable, Dict, Optional, Sequence, Set, Tuple, Type

from common.config import ClusterConfig
from common.errors import OK, one_line
from lockmanager.cluster import ConnectingCluster
from lockmanager.errors import NoWindow
from lockmanager.model import COLUMNS, SESSION_COLUMNS, SessionRow
from lockmanager.presenter import ConnectForm, LockManagerPresenter, Page
from lockmanager.settings import SettingsFile, WindowSettings

log = logging.getLogger(__name__)

POLL_MS = 20  # how often finished cluster calls and timers are looked at: a listing shows this much sooner
CHAR_PX = 8  # a column width hint in characters, in pixels
DEFAULT_SIZE = '1180x680'

Confirm = Callable[[str, str], bool]
ShowError = Callable[[str, str], None]
AskPath = Callable[[], Optional[str]]


class Tooltip:
    """A small note shown while the pointer rests on a widget; an empty text shows nothing."""

    def __init__(self, widget: tk.Widget, follow_pointer: bool = False):
        self.widget = widget
        self.text = ''
        self.tip: Optional[tk.Toplevel] = None
        if not follow_pointer:  # else the owner calls show() and hide() itself
            widget.bind('<Enter>', lambda event: self.show(self.text, event.x_root, event.y_root), add='+')
            widget.bind('<Leave>', lambda _: self.hide(), add='+')

    def show(self, text: str, x: int, y: int) -> None:
        self.hide()
        if not text:
            return
        self.tip = tk.Toplevel(self.widget)
        self.tip.wm_overrideredirect(True)
        self.tip.wm_geometry(f'+{x + 12}+{y + 18}')
        ttk.Label(
            self.tip, text=text, background='#ffffe0', foreground='#000', relief='solid', borderwidth=1, padding=(4, 2)
        ).pack()

    def hide(self) -> None:
        if self.tip is not None:
            self.tip.destroy()
            self.tip = None

    @property
    def shown(self) -> str:
        """The text on screen now ('' when hidden)."""
        return str(self.tip.winfo_children()[0].cget('text')) if self.tip is not None else ''


class ConnectDialog:
    """The cluster's address and credentials, for this run (Connect) or also the config file (Save)."""

    LABELS = {
        'host': 'Host',
        'port': 'Port',
        'username': 'User',
        'password': 'Password',
        'access_token': 'or access token',
        'ca_bundle': 'CA bundle (optional)',
    }
    SECRET = ('password', 'access_token')

    def __init__(self, window: 'LockManagerWindow', form: ConnectForm, problem: str):
        self.window = window
        self.top = top = tk.Toplevel(window.root)
        top.title('Connect to a Qumulo cluster')
        top.transient(window.root)
        top.resizable(False, False)
        frame = ttk.Frame(top, padding=12)
        frame.pack(fill='both', expand=True)
        self.values: Dict[str, tk.StringVar] = {}
        self.entries: Dict[str, ttk.Entry] = {}
        for n, name in enumerate(ConnectForm.field_names()):
            ttk.Label(frame, text=self.LABELS[name] + ':').grid(row=n, column=0, sticky='e', padx=(0, 6), pady=2)
            self.values[name] = tk.StringVar(value=getattr(form, name))
            entry = ttk.Entry(frame, textvariable=self.values[name], width=40, show='•' if name in self.SECRET else '')
            entry.grid(row=n, column=1, sticky='ew', pady=2)
            self.entries[name] = entry
        ttk.Button(frame, text='Browse…', command=self._browse).grid(row=n, column=2, padx=(6, 0))
        self.problem = tk.StringVar(value=problem)
        self.problem_label = ttk.Label(frame, textvariable=self.problem, foreground='#b00020', wraplength=420)
        self.problem_label.grid(row=n + 1, column=0, columnspan=3, sticky='w', pady=(8, 0))
        where = window.presenter.config_path or 'the config file'
        ttk.Label(frame, text=f'Save also writes {where} (readable by you only).', foreground='#555').grid(
            row=n + 2, column=0, columnspan=3, sticky='w', pady=(4, 0)
        )
        buttons = ttk.Frame(frame)
        buttons.grid(row=n + 3, column=0, columnspan=3, sticky='e', pady=(10, 0))
        self.connect_button = ttk.Button(buttons, text='Connect', command=lambda: self.submit(False), default='active')
        self.connect_button.pack(side='left')
        self.save_button = ttk.Button(buttons, text='Save', command=lambda: self.submit(True))
        self.save_button.pack(side='left', padx=6)
        ttk.Button(buttons, text='Cancel', command=self.close).pack(side='left')
        top.bind('<Return>', lambda _: self.submit(False))
        top.bind('<Escape>', lambda _: self.close())
        top.protocol('WM_DELETE_WINDOW', self.close)
        self.entries['host' if not form.host else 'password'].focus_set()

    def form(self) -> ConnectForm:
        return ConnectForm(**{name: value.get() for name, value in self.values.items()})

    def submit(self, save: bool) -> None:
        problem = self.window.presenter.connect(self.form(), save)
        if problem:
            self.problem.set(problem)
        else:
            self.close()

    def _browse(self) -> None:
        path = filedialog.askopenfilename(
            parent=self.top, title='CA bundle', filetypes=[('PEM', '*.pem *.crt'), ('All files', '*')]
        )
        if path:
            self.values['ca_bundle'].set(path)

    def close(self) -> None:
        self.top.destroy()
        self.window.connect_dialog = None


class LockManagerWindow:
    def __init__(
        self,
        root: tk.Tk,
        presenter: LockManagerPresenter,
        confirm: Optional[Confirm] = None,
        show_error: Optional[ShowError] = None,
        ask_save_path: Optional[AskPath] = None,
        settings: Optional[SettingsFile] = None,
    ):
        self.root = root
        self.presenter = presenter
        # Dialogs are injectable so that tests can answer them.
        self._confirm = confirm or (
            lambda title, text: messagebox.askyesno(
                title, text, icon=messagebox.WARNING, default=messagebox.NO, parent=root
            )
        )
        self._show_error = show_error or (lambda title, text: messagebox.showerror(title, text, parent=root))
        self._ask_save_path = ask_save_path or (
            lambda: filedialog.asksaveasfilename(
                parent=root,
                title='Export the shown rows',
                defaultextension='.csv',
                initialfile='smb-file-handles.csv',
                filetypes=[('CSV', '*.csv'), ('All files', '*')],
            )
        )
        # settings: where the size and column widths are remembered (None: they are not).
        self.settings = settings
        remembered = settings.load() if settings else WindowSettings()
        self.filling = False  # a page of rows is waiting to be drawn
        self.closed = False
        self.connect_dialog: Optional[ConnectDialog] = None
        self._page: Optional[Page] = None
        self._tip_item = ''
        self._idle: Dict[str, str] = {}  # idle callbacks pending, cancelled at quit
        self._build(remembered)
        root.protocol('WM_DELETE_WINDOW', self.quit)
        root.report_callback_exception = self._report_callback_exception
        presenter.attach(self)
        self._poll()

    # --- layout ----------------------------------------------------------------------------------
    def _build(self, remembered: WindowSettings) -> None:
        root = self.root
        root.geometry(remembered.size or DEFAULT_SIZE)
        root.columnconfigure(0, weight=1)
        root.rowconfigure(1, weight=1)
        self._build_menu()

        bar = ttk.Frame(root, padding=(6, 6, 6, 2))
        bar.grid(row=0, column=0, sticky='ew')
        self.list_button = ttk.Button(bar, text='List Locks', command=self.presenter.refresh)
        self.list_button.pack(side='left')
        ttk.Label(bar, text='Filter (path, user, client):').pack(side='left', padx=(12, 4))
        self.filter_text = tk.StringVar()
        self.filter_entry = ttk.Entry(bar, textvariable=self.filter_text, width=32)
        self.filter_entry.pack(side='left')
        self.filter_text.trace_add('write', lambda *_: self.presenter.filter_changed(self.filter_text.get()))
        self.filter_entry.bind('<Return>', lambda _: self.presenter.search())
        self.search_button = ttk.Button(bar, text='Search by Path', command=self.presenter.search)
        self.search_button.pack(side='left', padx=4)
        self.auto_refresh = tk.BooleanVar(value=bool(self.presenter.auto_refresh_s))
        self.auto_seconds = tk.StringVar(value=f'{self.presenter.auto_refresh_s or 30:g}')
        ttk.Checkbutton(
            bar, text='Auto-refresh every', variable=self.auto_refresh, command=self._auto_refresh_changed
        ).pack(side='left', padx=(12, 2))
        spin = ttk.Spinbox(
            bar, from_=2, to=3600, width=5, textvariable=self.auto_seconds, command=self._auto_refresh_changed
        )
        spin.pack(side='left')
        for event in ('<FocusOut>', '<Return>'):
            spin.bind(event, lambda _: self._auto_refresh_changed())
        ttk.Label(bar, text='s').pack(side='left', padx=(2, 0))
        self.progress = ttk.Progressbar(bar, mode='indeterminate', length=110)
        self.busy_label = ttk.Label(bar, foreground='#555')

        self.tabs = ttk.Notebook(root)
        self.tabs.grid(row=1, column=0, sticky='nsew', padx=6, pady=2)
        self.files_tab = ttk.Frame(self.tabs, padding=4)
        self.sessions_tab = ttk.Frame(self.tabs, padding=4)
        self.tabs.add(self.files_tab, text='Open files')
        self.tabs.add(self.sessions_tab, text='Sessions')
        self._build_files(self.files_tab, remembered.widths)
        self._build_sessions(self.sessions_tab, remembered.widths)

        self.status = tk.StringVar()
        ttk.Label(root, textvariable=self.status, relief='sunken', anchor='w', padding=(6, 2)).grid(
            row=2, column=0, sticky='ew'
        )
        root.bind('<F5>', lambda _: self.presenter.refresh())

    def _build_menu(self) -> None:
        menubar = tk.Menu(self.root)
        self.file_menu = tk.Menu(menubar, tearoff=0)
        self.file_menu.add_command(label='Connect…', command=self.presenter.ask_connection)
        self.file_menu.add_command(label='List Locks', accelerator='F5', command=self.presenter.refresh)
        self.file_menu.add_command(label='Export CSV…', command=self.presenter.export_visible)
        self.file_menu.add_separator()
        self.file_menu.add_command(label='Quit', command=self.quit)
        menubar.add_cascade(label='File', menu=self.file_menu)
        self.root.configure(menu=menubar)

    def _build_files(self, tab: ttk.Frame, widths: Dict[str, int]) -> None:
        tab.columnconfigure(0, weight=1)
        tab.rowconfigure(0, weight=1)
        # Every row is as tall as this, so the rows in view are the table's height over it.
        self.row_px = tkfont.nametofont('TkDefaultFont').metrics('linespace') + 6
        ttk.Style(self.root).configure('Treeview', rowheight=self.row_px)
        self.heading_px = 0  # measured once a row is drawn
        self.tree = ttk.Treeview(tab, columns=[c.key for c in COLUMNS], show='headings', selectmode='none')
        for column in COLUMNS:
            self.tree.heading(
                column.key, text=column.heading, command=lambda key=column.key: self.presenter.sort_by(key)
            )
            width = widths.get(f'files.{column.key}', column.width * CHAR_PX)
            self.tree.column(column.key, width=width, stretch=column.key == 'path', anchor='w')
        self.down = ttk.Scrollbar(tab, orient='vertical', command=self._scrollbar_moved)
        across = ttk.Scrollbar(tab, orient='horizontal', command=self.tree.xview)
        self.tree.configure(xscrollcommand=across.set)
        self.tree.grid(row=0, column=0, sticky='nsew')
        self.down.grid(row=0, column=1, sticky='ns')
        across.grid(row=1, column=0, sticky='ew')
        tree = self.tree
        tree.bind('<Configure>', lambda _: self._measure())
        tree.bind('<ButtonPress-1>', self._pressed)
        tree.bind('<Button-3>', self._context_menu)
        tree.bind('<Motion>', self._hover)
        tree.bind('<Leave>', lambda _: self.path_tip.hide())
        # The keys and the wheel move the presenter's index; 'break' keeps Treeview's own
        # bindings from scrolling the few items it holds.
        for sequence, step in (('Up', -1), ('Down', 1)):
            tree.bind(f'<{sequence}>', lambda _, s=step: self._key(s, False))
            tree.bind(f'<Shift-{sequence}>', lambda _, s=step: self._key(s, True))
        tree.bind('<Prior>', lambda _: self._key(-self.presenter.in_view, False))
        tree.bind('<Next>', lambda _: self._key(self.presenter.in_view, False))
        tree.bind('<Home>', lambda _: self._key(-(1 << 40), False))
        tree.bind('<End>', lambda _: self._key(1 << 40, False))
        tree.bind('<Shift-Home>', lambda _: self._key(-(1 << 40), True))
        tree.bind('<Shift-End>', lambda _: self._key(1 << 40, True))
        tree.bind('<Control-a>', lambda _: self._then_break(self.presenter.select_all))
        tree.bind('<Delete>', lambda _: self._then_break(self.presenter.close_selected))
        tree.bind('<MouseWheel>', lambda e: self._wheel(-1 if e.delta > 0 else 1))
        tree.bind('<Button-4>', lambda _: self._wheel(-1))
        tree.bind('<Button-5>', lambda _: self._wheel(1))
        self.path_tip = Tooltip(tree, follow_pointer=True)

        self.row_menu = tk.Menu(tree, tearoff=0)
        self.row_menu.add_command(label='Close this handle', command=self.presenter.close_menu_row)
        self.row_menu.add_command(label="Close all of this user's handles", command=self.presenter.close_menu_user)
        self.row_menu.add_command(label="Close all of this client's handles", command=self.presenter.close_menu_client)
        self.row_menu.add_separator()
        self.row_menu.add_command(label='Copy path', command=self.presenter.copy_menu_path)
        self.row_menu.add_command(label='Details', command=lambda: self.details.focus_set())

        pane = ttk.LabelFrame(tab, text='Details', padding=(6, 2))
        pane.grid(row=2, column=0, columnspan=2, sticky='ew', pady=(4, 0))
        font = tkfont.nametofont('TkDefaultFont')
        self.details = tk.Text(
            pane, height=5, wrap='none', relief='flat', font=font, background=self.root.cget('background')
        )
        self.details.configure(tabs=tuple(f'{px}p' for px in (95, 330, 420, 640, 740)))
        self.details.pack(fill='x')
        self.details.configure(state='disabled')

        actions = ttk.Frame(tab, padding=(0, 4, 0, 0))
        actions.grid(row=3, column=0, columnspan=2, sticky='ew')
        self.close_button = ttk.Button(actions, text='Close File', command=self.presenter.close_selected)
        self.close_button.pack(side='left')
        self.close_user_button = ttk.Button(
            actions, text="Close All of User's Handles", command=self.presenter.close_users_of_selection
        )
        self.close_user_button.pack(side='left', padx=4)
        self.close_client_button = ttk.Button(
            actions, text="Close All of Client's Handles", command=self.presenter.close_clients_of_selection
        )
        self.close_client_button.pack(side='left')
        self.export_button = ttk.Button(actions, text='Export CSV…', command=self.presenter.export_visible)
        self.export_button.pack(side='right')

    def _build_sessions(self, tab: ttk.Frame, widths: Dict[str, int]) -> None:
        tab.columnconfigure(0, weight=1)
        tab.rowconfigure(1, weight=1)
        self.sessions_note = tk.StringVar()
        self.sessions_note_label = ttk.Label(tab, textvariable=self.sessions_note, foreground='#8a5a00')
        self.sessions_note_label.grid(row=0, column=0, columnspan=2, sticky='w')
        tree = ttk.Treeview(tab, columns=[c.key for c in SESSION_COLUMNS], show='headings', selectmode='extended')
        for column in SESSION_COLUMNS:
            tree.heading(
                column.key, text=column.heading, command=lambda key=column.key: self.presenter.sort_sessions_by(key)
            )
            width = widths.get(f'sessions.{column.key}', column.width * CHAR_PX)
            tree.column(column.key, width=width, stretch=column.key == 'shares', anchor='w')
        down = ttk.Scrollbar(tab, orient='vertical', command=tree.yview)
        tree.configure(yscrollcommand=down.set)
        tree.grid(row=1, column=0, sticky='nsew')
        down.grid(row=1, column=1, sticky='ns')
        tree.bind('<<TreeviewSelect>>', self._sessions_selected)
        tree.bind('<Delete>', lambda _: self.presenter.close_selected_sessions())
        self.session_tree = tree
        actions = ttk.Frame(tab, padding=(0, 4, 0, 0))
        actions.grid(row=2, column=0, columnspan=2, sticky='ew')
        self.close_session_button = ttk.Button(
            actions, text='Close Session', command=self.presenter.close_selected_sessions
        )
        self.close_session_button.pack(side='left')
        ttk.Label(actions, text='closes every file the session holds', foreground='#555').pack(side='left', padx=8)
        self.tips = {
            button: Tooltip(button)
            for button in (
                self.close_button,
                self.close_user_button,
                self.close_client_button,
                self.close_session_button,
            )
        }

    # --- what the presenter calls ----------------------------------------------------------------
    def show_rows(self, page: Page) -> None:
        # Drawn when Tk is next idle: a burst of wheel notches or key repeats draws once.
        self._page = page
        if not self.filling:
            self.filling = True
            self._idle['draw'] = self.root.after_idle(self._draw)

    def _draw(self) -> None:
        self.filling = False
        self._idle.pop('draw', None)
        page, tree = self._page, self.tree
        if page is None or self.closed:
            return
        # Straight to Tcl with the values as a list: ttk's item() and insert() escape each value
        # through regular expressions first. Items are reused, named by their place on the page.
        call, name = tree.tk.call, str(tree)
        items = tree.get_children()
        for n, row in enumerate(page.rows):
            if n < len(items):
                call(name, 'item', str(n), '-values', row.cells)
            else:
                call(name, 'insert', '', 'end', '-id', str(n), '-values', row.cells)
        if len(items) > len(page.rows):
            tree.delete(*items[len(page.rows) :])
        tree.selection_set([str(n) for n in sorted(page.selected)])
        if page.cursor is not None:
            tree.focus(str(page.cursor))
        tree.yview_moveto(0)
        self.down.set(*page.scroll)
        if not self.heading_px and page.rows and 'measure' not in self._idle:
            self._idle['measure'] = self.root.after_idle(self._measure)

    def _measure(self) -> None:
        """Tell the presenter how many whole rows fit (the heading's height is known once a row is drawn)."""
        self._idle.pop('measure', None)
        if self.closed:
            return
        # Until the tree is on screen its heading has no height yet, and row 0 seems to start at the top.
        box = self.tree.bbox('0') if self.tree.exists('0') and self.tree.winfo_viewable() else ''
        if box:
            self.heading_px = box[1]
        heading = self.heading_px or self.row_px + 8
        self.presenter.set_rows_in_view((self.tree.winfo_height() - heading) // self.row_px)

    def rows_shown(self) -> int:
        """Rows in the table (filtered), drawn or not: the table holds only those in view."""
        return len(self.presenter.visible)

    def set_headings(self, headings: Sequence[Tuple[str, str]]) -> None:
        for key, text in headings:
            self.tree.heading(key, text=text)

    def show_sessions(self, rows: Sequence[SessionRow], selected: Set[int], note: str) -> None:
        # The <<TreeviewSelect>> this fires is handled later and hands back this same selection.
        tree = self.session_tree
        tree.delete(*tree.get_children())
        for n, row in enumerate(rows):
            tree.insert('', 'end', iid=str(n), values=row.cells)
        tree.selection_set([str(n) for n in sorted(selected)])
        self.sessions_note.set(note)
        if note:
            self.sessions_note_label.grid()
        else:
            self.sessions_note_label.grid_remove()

    def set_session_headings(self, headings: Sequence[Tuple[str, str]]) -> None:
        for key, text in headings:
            self.session_tree.heading(key, text=text)

    def set_permissions(self, close_refusal: str, session_refusal: str) -> None:
        for button, tip in self.tips.items():
            refusal = session_refusal if button is self.close_session_button else close_refusal
            button.state(['disabled'] if refusal else ['!disabled'])
            tip.text = refusal
        for label in ('Close this handle', "Close all of this user's handles", "Close all of this client's handles"):
            self.row_menu.entryconfigure(label, state='disabled' if close_refusal else 'normal')

    def show_details(self, details: Sequence[Tuple[str, str]]) -> None:
        text = self.details
        text.configure(state='normal')
        text.delete('1.0', 'end')
        if details:
            (label, path), rest = details[0], details[1:]
            lines = [f'{label}:\t{path}']
            # The other fields in three columns, one under the other.
            per = (len(rest) + 2) // 3
            for n in range(per):
                cells = [rest[k] for k in (n, n + per, n + 2 * per) if k < len(rest)]
                lines.append('\t'.join(f'{label}:\t{value}' for label, value in cells))
            text.insert('1.0', '\n'.join(lines))
        text.configure(state='disabled')

    def copy_text(self, text: str) -> None:
        self.root.clipboard_clear()
        self.root.clipboard_append(text)

    def set_title(self, text: str) -> None:
        self.root.title(text)

    def ask_connection(self, form: ConnectForm, problem: str) -> None:
        if self.connect_dialog is not None:
            self.connect_dialog.top.lift()
            self.connect_dialog.problem.set(problem)
            return
        self.connect_dialog = ConnectDialog(self, form, problem)

    def set_busy(self, busy: bool, text: str) -> None:
        if busy:
            self.progress.pack(side='right')
            self.busy_label.configure(text=text)
            self.busy_label.pack(side='right', padx=6)
            self.progress.start(12)
        else:
            self.progress.stop()
            self.progress.pack_forget()
            self.busy_label.pack_forget()
        self.root.configure(cursor='watch' if busy else '')

    def set_status(self, text: str) -> None:
        self.status.set(text)

    def show_error(self, title: str, message: str) -> None:
        self._show_error(title, message)

    def confirm(self, title: str, message: str) -> bool:
        return bool(self._confirm(title, message))

    def ask_save_path(self) -> Optional[str]:
        return self._ask_save_path() or None

    # --- what the user does ----------------------------------------------------------------------
    def _position(self, y: int) -> Optional[int]:
        item = self.tree.identify_row(y)
        return int(item) if item else None

    def _pressed(self, event: tk.Event) -> Optional[str]:
        region = self.tree.identify_region(event.x, event.y)
        if region in ('heading', 'separator'):
            return None  # Treeview's own binding: sorting, resizing a column
        self.tree.focus_set()
        self.presenter.click(self._position(event.y), toggle=bool(event.state & 0x4), extend=bool(event.state & 0x1))
        return 'break'

    def _context_menu(self, event: tk.Event) -> None:
        if self.tree.identify_region(event.x, event.y) not in ('cell', 'tree'):
            return
        if self.presenter.context_at(self._position(event.y)):
            try:
                self.row_menu.tk_popup(event.x_root, event.y_root)
            finally:
                self.row_menu.grab_release()

    def _hover(self, event: tk.Event) -> None:
        # The full path over the path cell: a long one is cut off by the column.
        item = self.tree.identify_row(event.y)
        on_path = item and self.tree.identify_column(event.x) == '#1'
        key = f'{item} {self.presenter.first}' if on_path else ''
        if key == self._tip_item:
            return
        self._tip_item = key
        row = self.presenter.row_at(int(item)) if on_path else None
        self.path_tip.show(row.path if row else '', event.x_root, event.y_root)

    def _key(self, step: int, extend: bool) -> str:
        self.presenter.move_cursor(step, extend)
        return 'break'

    def _wheel(self, notches: int) -> str:
        self.presenter.scroll_wheel(notches)
        return 'break'

    @staticmethod
    def _then_break(action: Callable[[], None]) -> str:
        action()
        return 'break'

    def _scrollbar_moved(self, *args: str) -> None:
        if args[0] == 'moveto':
            self.presenter.scroll_to_fraction(float(args[1]))
        elif args[0] == 'scroll':
            steps = int(args[1])
            if args[2] == 'pages':
                self.presenter.scroll_pages(steps)
            else:
                self.presenter.scroll_by(steps)

    def _sessions_selected(self, _event: object) -> None:
        self.presenter.session_selection_changed(int(item) for item in self.session_tree.selection())

    def _auto_refresh_changed(self) -> None:
        try:
            seconds = float(self.auto_seconds.get())
        except ValueError:
            seconds = 0
        self.presenter.set_auto_refresh(seconds if self.auto_refresh.get() and seconds >= 1 else 0)

    def _poll(self) -> None:
        self.presenter.tick()
        self._poll_job = self.root.after(POLL_MS, self._poll)

    def _report_callback_exception(
        self, kind: Type[BaseException], value: BaseException, traceback: Optional[TracebackType]
    ) -> None:
        # A bug in a callback becomes a dialog, not a traceback on the terminal.
        log.debug('error in a window callback', exc_info=(kind, value, traceback))
        self._show_error('Unexpected error', f'{kind.__name__}: {one_line(value)}')

    def remembered(self) -> WindowSettings:
        """The size and column widths to remember."""
        widths = {f'files.{key}': int(self.tree.column(key, 'width')) for key in self.tree['columns']}
        tree = self.session_tree
        widths.update({f'sessions.{key}': int(tree.column(key, 'width')) for key in tree['columns']})
        return WindowSettings(f'{self.root.winfo_width()}x{self.root.winfo_height()}', widths)

    def quit(self) -> None:
        if self.closed:
            return
        if self.settings:
            problem = self.settings.save(self.remembered())
            if problem:
                log.warning('%s', problem)
        self.closed = True
        self.presenter.shutdown()
        for job in [self._poll_job, *self._idle.values()]:
            self.root.after_cancel(job)
        self.root.destroy()


def open_root(title: str) -> tk.Tk:
    try:
        root = tk.Tk(className='QumuloLockManager')
    except tk.TclError as exc:
        raise NoWindow(f'cannot open the lock manager window: {one_line(exc)}') from None
    root.title(title)
    root.geometry(DEFAULT_SIZE)
    root.minsize(720, 360)
    return root


def run_window(
    config: Optional[ClusterConfig], auto_refresh_s: float = 0, config_path: str = '', problem: str = ''
) -> int:
    """The window; with no usable config (problem says why) it opens with the Connect dialog."""
    root = open_root('Qumulo Lock Manager')
    presenter = LockManagerPresenter(
        ConnectingCluster(config) if config else None,
        auto_refresh_s=auto_refresh_s,
        config=config,
        config_path=config_path,
        problem=problem,
    )
    LockManagerWindow(root, presenter, settings=SettingsFile())
    presenter.refresh()
    root.mainloop()
    return OK
