"""The lock manager window: Tk widgets and nothing else.

A humble view: it draws what LockManagerPresenter hands it and forwards every click, keystroke and
timer tick there. The only module that imports tkinter.
"""

import logging
import tkinter as tk
from tkinter import filedialog, messagebox, ttk
from types import TracebackType
from typing import Callable, Optional, Sequence, Tuple, Type

from common.config import ClusterConfig
from common.errors import OK, one_line
from lockmanager.cluster import ConnectingCluster
from lockmanager.errors import NoWindow
from lockmanager.model import COLUMNS, HandleRow
from lockmanager.presenter import LockManagerPresenter, RowFeed

log = logging.getLogger(__name__)

POLL_MS = 40  # how often finished cluster calls and timers are looked at
CHAR_PX = 8  # a column width hint in characters, in pixels

Confirm = Callable[[str, str], bool]
ShowError = Callable[[str, str], None]
AskPath = Callable[[], Optional[str]]


class LockManagerWindow:
    def __init__(
        self,
        root: tk.Tk,
        presenter: LockManagerPresenter,
        confirm: Optional[Confirm] = None,
        show_error: Optional[ShowError] = None,
        ask_save_path: Optional[AskPath] = None,
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
        self.feed = RowFeed()
        self.filling = False  # rows are still being added to the table
        self.closed = False
        self._build()
        root.protocol('WM_DELETE_WINDOW', self.quit)
        root.report_callback_exception = self._report_callback_exception
        presenter.attach(self)
        self._poll()

    # --- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.root.columnconfigure(0, weight=1)
        self.root.rowconfigure(1, weight=1)

        bar = ttk.Frame(self.root, padding=(6, 6, 6, 2))
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

        table = ttk.Frame(self.root, padding=(6, 2))
        table.grid(row=1, column=0, sticky='nsew')
        table.columnconfigure(0, weight=1)
        table.rowconfigure(0, weight=1)
        self.tree = ttk.Treeview(table, columns=[c.key for c in COLUMNS], show='headings', selectmode='extended')
        for column in COLUMNS:
            self.tree.heading(
                column.key, text=column.heading, command=lambda key=column.key: self.presenter.sort_by(key)
            )
            self.tree.column(column.key, width=column.width * CHAR_PX, stretch=column.key == 'path', anchor='w')
        down = ttk.Scrollbar(table, orient='vertical', command=self.tree.yview)
        across = ttk.Scrollbar(table, orient='horizontal', command=self.tree.xview)
        self.tree.configure(yscrollcommand=down.set, xscrollcommand=across.set)
        self.tree.grid(row=0, column=0, sticky='nsew')
        down.grid(row=0, column=1, sticky='ns')
        across.grid(row=1, column=0, sticky='ew')
        self.tree.bind('<<TreeviewSelect>>', self._selection_changed)
        self.tree.bind('<Delete>', lambda _: self.presenter.close_selected())
        self.root.bind('<F5>', lambda _: self.presenter.refresh())

        actions = ttk.Frame(self.root, padding=(6, 2, 6, 4))
        actions.grid(row=2, column=0, sticky='ew')
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

        self.status = tk.StringVar()
        ttk.Label(self.root, textvariable=self.status, relief='sunken', anchor='w', padding=(6, 2)).grid(
            row=3, column=0, sticky='ew'
        )

    # --- what the presenter calls ----------------------------------------------------------------
    def show_rows(self, rows: Sequence[HandleRow]) -> None:
        generation = self.feed.start(rows)
        self.filling = True
        self.tree.delete(*self.tree.get_children())
        self._add_batch(generation)

    def _add_batch(self, generation: int) -> None:
        # Straight to Tcl with the values as a list: ttk's insert() escapes each value through
        # regular expressions first, six times the cost with 20,000 rows.
        call, tree = self.tree.tk.call, str(self.tree)
        for item, values in self.feed.next_batch(generation) or ():
            call(tree, 'insert', '', 'end', '-id', item, '-values', values)
        if generation != self.feed.generation:
            return  # a newer listing or filter took over
        if self.feed.done(generation):
            self.filling = False
            shown = [item for item in self.presenter.selected if self.tree.exists(item)]
            self.tree.selection_set(shown)
        else:
            self.root.after(1, self._add_batch, generation)

    def set_headings(self, headings: Sequence[Tuple[str, str]]) -> None:
        for key, text in headings:
            self.tree.heading(key, text=text)

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
    def _selection_changed(self, _event: object) -> None:
        # Emptying the table for new rows also fires this: the presenter keeps its selection then.
        if not self.filling:
            self.presenter.selection_changed(self.tree.selection())

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

    def quit(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.presenter.shutdown()
        self.root.after_cancel(self._poll_job)
        self.root.destroy()


def open_root(title: str) -> tk.Tk:
    try:
        root = tk.Tk(className='QumuloLockManager')
    except tk.TclError as exc:
        raise NoWindow(f'cannot open the lock manager window: {one_line(exc)}') from None
    root.title(title)
    root.geometry('1180x640')
    root.minsize(720, 320)
    return root


def run_window(config: ClusterConfig, auto_refresh_s: float = 0) -> int:
    root = open_root(f'Qumulo Lock Manager: {config.host}')
    presenter = LockManagerPresenter(ConnectingCluster(config), auto_refresh_s=auto_refresh_s)
    LockManagerWindow(root, presenter)
    presenter.refresh()
    root.mainloop()
    return OK
