"""The lock manager window as a real Tk window on a private Xvfb display, against sim/qumulo."""

import os
import pathlib
import subprocess
import sys
import textwrap
import time
from datetime import datetime

import pytest

from common.config import load_cluster_config
from lockmanager.cluster import ConnectingCluster, Snapshot
from lockmanager.presenter import LockManagerPresenter
from lockmanager.settings import SettingsFile
from sim.qumulo.samples import open_sample_handles

pytestmark = pytest.mark.display

PROJECT = pathlib.Path(__file__).resolve().parents[2]


class Answers:
    """Stands in for the dialogs: records what was asked and answers yes."""

    def __init__(self):
        self.questions, self.errors = [], []

    def confirm(self, title, message):
        self.questions.append((title, message))
        return True

    def show_error(self, title, message):
        self.errors.append((title, message))


@pytest.fixture
def open_window(display, sim, tmp_path):
    """open_window(user) -> (window, answers): the window listing `sim` as that user."""
    from lockmanager import gui

    opened = []

    def start(user='admin', settings=None):
        config = load_cluster_config(sim.write_config(tmp_path / f'{user}.ini', USERNAME=user, PASSWORD=user))
        root = gui.open_root('Qumulo Lock Manager: test')
        answers = Answers()
        window = gui.LockManagerWindow(
            root,
            LockManagerPresenter(ConnectingCluster(config)),
            confirm=answers.confirm,
            show_error=answers.show_error,
            settings=settings,
        )
        opened.append(window)
        window.presenter.refresh()
        pump_until(root, lambda: window.presenter.snapshot is not None and not window.filling)
        return window, answers

    yield start
    for window in opened:
        window.quit()


def pump_until(root, condition, timeout=20.0):
    """Run the Tk event loop, one event at a time as mainloop() does, until condition() holds;
    returns the longest time one event kept the loop busy (how long a click could wait)."""
    # Imported here, not at the top, so that collecting the quick tests (display deselected) works on a
    # Python built without Tk; a window test run there still fails, on this import.
    import _tkinter

    deadline = time.monotonic() + timeout
    longest = 0.0
    while not condition():
        assert time.monotonic() < deadline, 'the window did not get there in time'
        started = time.monotonic()
        if root.tk.dooneevent(_tkinter.DONT_WAIT):
            longest = max(longest, time.monotonic() - started)
        else:
            time.sleep(0.002)
    return longest


def settle(window):
    pump_until(
        window.root,
        lambda: not window.presenter.jobs.busy and not window.filling and not window.presenter.filter_pending,
    )


def shown(window):
    return [tuple(window.tree.item(item, 'values')[i] for i in (0, 2)) for item in window.tree.get_children()]


def click(widget, x, y, **modifiers):
    widget.event_generate('<Motion>', x=x, y=y, warp=True)
    widget.event_generate('<ButtonPress-1>', x=x, y=y, **modifiers)
    widget.event_generate('<ButtonRelease-1>', x=x, y=y, **modifiers)
    widget.update()


def click_heading(window, key):
    tree = window.tree
    x = sum(tree.column(c, 'width') for c in tree['columns'][: list(tree['columns']).index(key)]) + 20
    # The headings have no place until Tk has drawn the window: on a loaded machine it may not have yet.
    pump_until(window.root, lambda: tree.identify_region(x, 8) == 'heading')
    click(tree, x, 8)


def click_row(window, path, user, **modifiers):
    tree = window.tree
    [item] = [i for i in tree.get_children() if tree.item(i, 'values')[0] == path and tree.item(i, 'values')[2] == user]
    tree.see(item)
    # A row has no box until Tk has drawn it: on a loaded machine the window may not have yet.
    pump_until(window.root, lambda: tree.bbox(item))
    x, y, _, height = tree.bbox(item)
    click(tree, x + 30, y + height // 2, **modifiers)


def type_text(entry, text):
    entry.focus_force()
    entry.update()
    for char in text:
        entry.event_generate('<KeyPress>', keysym={'/': 'slash', '.': 'period'}.get(char, char))
    entry.update()


def listed_handles(sim):
    rc = sim.client()
    return {
        h['handle_info']['location']: h
        for page in rc.smb.list_file_handles(resolve_paths=True)
        for h in page['file_handles']
    }


def test_list_filter_sort_select_and_close_two_handles(open_window, sim, display, tmp_path):
    open_sample_handles(sim)
    sim.control('smb/open', {'path': '/eng/spec.docx', 'user': 'erin', 'client': '10.0.2.9', 'access': 'read'})
    window, answers = open_window()
    assert len(window.tree.get_children()) == 6
    assert window.status.get().startswith('6 handles on 4 files, 5 users, 5 clients')

    type_text(window.filter_entry, 'finance/')
    settle(window)
    assert window.filter_text.get() == 'finance/'
    assert shown(window) == [
        ('/finance/budget-2027.xlsx', 'alice'),
        ('/finance/Q3.xlsx', 'alice'),
        ('/finance/Q3.xlsx', 'bob'),
    ]

    click_heading(window, 'user')
    click_heading(window, 'user')
    settle(window)
    assert window.tree.heading('user', 'text') == 'User ▼'
    assert [user for _, user in shown(window)] == ['bob', 'alice', 'alice']

    click_row(window, '/finance/Q3.xlsx', 'bob')
    click_row(window, '/finance/budget-2027.xlsx', 'alice', state=0x4)  # Control-click adds to the selection
    assert len(window.tree.selection()) == 2 and '2 selected' in window.status.get()
    display.screenshot(tmp_path / 'lock-manager-two-selected.png')
    chosen = {item: window.tree.item(item, 'values') for item in window.tree.selection()}

    window.close_button.invoke()
    [(title, question)] = answers.questions
    assert title == 'Close 2 file handles?'
    assert '/finance/Q3.xlsx  (bob from 10.0.0.6, read)' in question
    assert '/finance/budget-2027.xlsx  (alice from 10.0.0.5, read+write)' in question
    assert 'unsaved work in them may be lost' in question
    settle(window)
    assert answers.errors == []
    assert shown(window) == [('/finance/Q3.xlsx', 'alice')]
    assert 'closed 2 of 2 handles' in window.status.get()
    left = listed_handles(sim)
    assert not set(chosen) & set(left) and len(left) == 4
    display.screenshot(tmp_path / 'lock-manager-after-close.png')
    assert (tmp_path / 'lock-manager-after-close.png').stat().st_size > 10_000


def test_the_window_keeps_responding_while_a_slow_cluster_answers(open_window, sim):
    open_sample_handles(sim)
    window, _ = open_window()
    sim.control('latency', {'ms': 500})  # each of the listing's calls
    window.list_button.invoke()
    window.root.update()
    assert window.progress.winfo_ismapped()
    assert 'Listing handles' in window.busy_label.cget('text')
    started = time.monotonic()
    longest = pump_until(window.root, lambda: not window.presenter.jobs.busy)
    sim.control('latency', {'ms': 0})
    assert time.monotonic() - started > 2  # several slow calls went by...
    assert longest < 0.3  # ...and no event of the window waited for one of them
    window.root.update()
    assert not window.progress.winfo_ismapped()


def test_closing_the_window_quits_the_program_even_while_listing(display, sim, tmp_path):
    open_sample_handles(sim)
    config = sim.write_config(tmp_path / 'lock.ini')
    sim.control('latency', {'ms': 5000})  # every call of the first listing is still running at the close
    # The real entry point, with the window manager's close button pressed 1.5 s after start.
    program = textwrap.dedent(f"""
        import runpy, sys, tkinter
        start = tkinter.Tk.mainloop
        def mainloop(root, n=0):
            root.after(1500, lambda: root.tk.call(root.protocol('WM_DELETE_WINDOW')))
            start(root, n)
        tkinter.Tk.mainloop = mainloop
        sys.argv = ['qumulo_lock_manager.py', '--config-file', {str(config)!r}]
        runpy.run_path('qumulo_lock_manager.py', run_name='__main__')
    """)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, '-c', program],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, DISPLAY=display.name),
    )
    assert done.returncode == 0 and done.stderr == ''
    assert time.monotonic() - started < 8  # waiting for the listing would take 10 s or more


def right_click_row(window, path, user):
    tree = window.tree
    [item] = [i for i in tree.get_children() if tree.item(i, 'values')[0] == path and tree.item(i, 'values')[2] == user]
    pump_until(window.root, lambda: tree.bbox(item))
    x, y, _, height = tree.bbox(item)
    tree.event_generate('<Motion>', x=x + 30, y=y + height // 2, warp=True)
    tree.event_generate('<Button-3>', x=x + 30, y=y + height // 2, rootx=100, rooty=100)
    tree.update()


def test_a_viewer_finds_the_close_buttons_off_with_the_reason_and_is_never_asked(open_window, sim, display, tmp_path):
    open_sample_handles(sim)
    window, answers = open_window('viewer')
    reason = 'read-only: PRIVILEGE_SMB_FILE_HANDLE_WRITE is missing'
    assert reason in window.status.get()
    buttons = (window.close_button, window.close_user_button, window.close_client_button)
    assert all(button.instate(['disabled']) for button in buttons)
    assert window.list_button.instate(['!disabled']) and window.export_button.instate(['!disabled'])
    assert [window.tips[button].text for button in buttons] == [reason] * 3
    # viewer may list sessions but not close them
    assert window.close_session_button.instate(['disabled'])
    assert window.tips[window.close_session_button].text == 'read-only: PRIVILEGE_SMB_SESSION_WRITE is missing'
    window.close_user_button.event_generate('<Enter>', x=5, y=5)
    window.root.update()
    assert window.tips[window.close_user_button].shown == reason
    display.screenshot(tmp_path / 'read-only-tooltip.png')
    window.close_user_button.event_generate('<Leave>')

    click_row(window, '/design/cover.psd', 'dave')
    window.tree.event_generate('<Delete>')  # the key still reaches the presenter, which refuses
    right_click_row(window, '/design/cover.psd', 'dave')
    assert window.row_menu.entrycget('Close this handle', 'state') == 'disabled'
    assert window.row_menu.entrycget('Copy path', 'state') == 'normal'
    window.row_menu.invoke('Close this handle')  # disabled: does nothing
    window.row_menu.unpost()
    settle(window)
    assert answers.questions == [] and answers.errors == []
    assert reason in window.status.get() and len(listed_handles(sim)) == 5


def test_natural_sort_after_a_heading_click(open_window, sim):
    opens = [{'path': f'/logs/file{n}', 'user': 'erin', 'client': '10.0.2.9', 'access': 'read'} for n in (10, 2, 1)]
    sim.control('smb/open', opens)
    window, _ = open_window()
    click_heading(window, 'user')
    click_heading(window, 'path')
    settle(window)
    assert window.tree.heading('path', 'text') == 'Path ▲'
    assert [path for path, _ in shown(window)] == ['/logs/file1', '/logs/file2', '/logs/file10']


def test_the_row_menu_copies_the_path_and_closes_exactly_its_handle(open_window, sim, display, tmp_path):
    open_sample_handles(sim)
    sim.control('dns', {'ip_address': '10.0.0.6', 'hostname': 'ws-bob.example.com'})
    window, answers = open_window()
    right_click_row(window, '/finance/budget-2027.xlsx', 'alice')
    assert window.row_menu.winfo_ismapped()
    display.screenshot(tmp_path / 'row-menu.png')
    window.row_menu.invoke('Copy path')
    window.row_menu.unpost()
    assert window.root.clipboard_get() == '/finance/budget-2027.xlsx'

    right_click_row(window, '/finance/Q3.xlsx', 'bob')
    [bob] = window.presenter.selected_rows()
    assert bob.host == 'ws-bob.example.com'
    before = listed_handles(sim)
    window.row_menu.invoke('Close this handle')
    window.row_menu.unpost()
    [(title, question)] = answers.questions
    assert (
        title == 'Close 1 file handle?'
        and '/finance/Q3.xlsx  (bob from 10.0.0.6 (ws-bob.example.com), read)' in question
    )
    settle(window)
    after = listed_handles(sim)
    assert set(before) - set(after) == {bob.location} and len(after) == 4
    assert ('/finance/Q3.xlsx', 'bob') not in shown(window) and len(shown(window)) == 4


def test_the_details_pane_shows_the_selected_row(open_window, sim, display, tmp_path):
    open_sample_handles(sim)
    window, _ = open_window()
    click_row(window, '/design/cover.psd', 'carol')
    text = window.details.get('1.0', 'end')
    assert text.startswith('Path:\t/design/cover.psd\n')
    for field in ('File ID:', 'Share:\tdesign', 'User:\tcarol', 'Auth ID:', 'Client:\t10.0.1.20', 'Host name:'):
        assert field in text
    for field in ('Access:\tread+write', 'Byte-range locks:\t2', 'Open since:', 'Idle:', 'Handle location:'):
        assert field in text
    assert 'Share modes:\t' in text
    tree = window.tree
    [item] = [i for i in tree.get_children() if tree.item(i, 'values')[2] == 'alice'][:1]
    pump_until(window.root, lambda: tree.bbox(item, 'path'))  # drawn: a loaded machine may lag
    x, y, _, height = tree.bbox(item, 'path')
    tree.event_generate('<Motion>', x=x + 10, y=y + height // 2)
    window.root.update()
    assert window.path_tip.shown == '/finance/budget-2027.xlsx'  # the full path over its cell
    x, y, _, height = tree.bbox(item, 'user')
    tree.event_generate('<Motion>', x=x + 10, y=y + height // 2)
    window.root.update()
    assert window.path_tip.shown == ''
    right_click_row(window, '/design/cover.psd', 'carol')
    window.row_menu.invoke('Details')
    window.row_menu.unpost()
    window.root.update()
    assert window.root.focus_get() is window.details
    display.screenshot(tmp_path / 'details.png')


def test_the_window_remembers_its_size_and_column_widths(open_window, sim, tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path / 'conf'))
    window, _ = open_window(settings=SettingsFile())
    window.root.geometry('1000x600')
    window.tree.column('user', width=222)
    window.session_tree.column('client', width=133)
    window.root.update()
    window.quit()
    saved = tmp_path / 'conf' / 'qumulo_lock_manager' / 'window.json'
    assert '"size": "1000x600"' in saved.read_text()
    window, _ = open_window(settings=SettingsFile())
    window.root.update()
    assert (window.root.winfo_width(), window.root.winfo_height()) == (1000, 600)
    assert window.tree.column('user', 'width') == 222 and window.session_tree.column('client', 'width') == 133
    saved.write_text('{damaged')
    window.quit()
    assert '"size": "1000x600"' in saved.read_text()  # rewritten whole


def test_the_sessions_tab_lists_and_closes_a_session_and_its_handles_go(open_window, sim, display, tmp_path):
    open_sample_handles(sim)
    window, answers = open_window()
    window.tabs.select(window.sessions_tab)
    tree = window.session_tree
    sessions = [tree.item(item, 'values') for item in tree.get_children()]
    assert sorted((s[0], s[1]) for s in sessions) == [
        ('alice', '10.0.0.5'),
        ('bob', '10.0.0.6'),
        ('carol', '10.0.1.20'),
        ('dave', '10.0.1.21'),
    ]
    assert window.sessions_note.get() == '' and window.close_session_button.instate(['!disabled'])
    click_heading_of(tree, 'user')  # sorted by user already: the click reverses it
    settle(window)
    assert tree.heading('user', 'text') == 'User ▼' and tree.item(tree.get_children()[0], 'values')[0] == 'dave'
    type_text(window.filter_entry, 'car')
    settle(window)
    [carol] = tree.get_children()
    tree.selection_set(carol)
    window.root.update()
    assert '1 session selected' in window.status.get()
    display.screenshot(tmp_path / 'sessions.png')
    window.close_session_button.invoke()
    [(title, question)] = answers.questions
    assert title == 'Close 1 SMB session?' and 'carol from 10.0.1.20' in question
    settle(window)
    assert answers.errors == [] and 'closed 1 of 1 session' in window.status.get()
    assert [h['handle_info']['location'] for h in listed_handles(sim).values() if 'carol' in str(h)] == []
    assert len(listed_handles(sim)) == 4 and tree.get_children() == ()
    window.filter_text.set('')
    settle(window)
    assert len(tree.get_children()) == 3 and len(shown(window)) == 4


def click_heading_of(tree, key):
    x = sum(tree.column(c, 'width') for c in tree['columns'][: list(tree['columns']).index(key)]) + 20
    tree.update()
    click(tree, x, 8)


class ManyHandles:
    """A cluster of 20,000 handles, without the cluster: the view is what is tested here."""

    def __init__(self, count=20_000):
        from tests.lockmanager.conftest import row

        self.rows = tuple(row(f'/big/file{n}', f'user{n % 1000}', f'10.1.{n // 250}.{n % 250}') for n in range(count))

    def fetch(self):
        return Snapshot(self.rows, datetime.now().astimezone(), 'admin', True)


def test_the_virtual_table_draws_only_what_fits_and_scrolls_to_the_last_row(display, tmp_path):
    from lockmanager import gui

    root = gui.open_root('Qumulo Lock Manager: 20,000 handles')
    presenter = LockManagerPresenter(ManyHandles())
    window = gui.LockManagerWindow(root, presenter)
    try:
        presenter.refresh()
        pump_until(root, lambda: presenter.snapshot is not None and not window.filling)
        root.update()
        settle(window)
        assert window.rows_shown() == 20_000
        items = window.tree.get_children()
        assert 10 <= presenter.in_view <= len(items) <= presenter.in_view + 2 < 60
        assert window.tree.item(items[0], 'values')[0] == '/big/file0'
        window.tree.focus_force()
        root.update()
        window.tree.event_generate('<Button-5>')  # the wheel
        root.update()
        assert window.tree.item(window.tree.get_children()[0], 'values')[0] == '/big/file3'
        window.tree.event_generate('<End>')
        root.update()
        last = [i for i in window.tree.get_children() if window.tree.item(i, 'values')[0] == '/big/file19999']
        assert last and window.tree.selection() == tuple(last)
        pump_until(root, lambda: window.tree.bbox(last[0]))
        x, y, _, height = window.tree.bbox(last[0])
        assert y + height <= window.tree.winfo_height()  # in view, not below the edge
        assert window.down.get()[1] == 1.0
        display.screenshot(tmp_path / 'virtual-table-end.png')
        window._scrollbar_moved('moveto', '0.5')
        root.update()
        assert window.tree.item(window.tree.get_children()[0], 'values')[0] == '/big/file10000'
        window.tree.event_generate('<Prior>')  # a page up from the row chosen by End
        root.update()
        [chosen] = window.presenter.selected_rows()
        assert chosen.path == f'/big/file{19_999 - presenter.in_view}'
    finally:
        window.quit()


def test_with_no_config_the_window_opens_the_connect_dialog_and_save_writes_the_file(display, sim, tmp_path):
    from lockmanager import gui

    root = gui.open_root('Qumulo Lock Manager')
    saved = tmp_path / 'qumulo_lock_manager_config.ini'
    open_sample_handles(sim)
    presenter = LockManagerPresenter(None, config_path=str(saved), problem='no config file found')
    window = gui.LockManagerWindow(root, presenter)
    try:
        presenter.refresh()
        root.update()
        dialog = window.connect_dialog
        assert dialog is not None and dialog.problem.get() == 'no config file found'
        for name, value in (('host', sim.host), ('port', 'eighty'), ('username', 'admin'), ('password', 'admin')):
            dialog.values[name].set(value)
        dialog.connect_button.invoke()
        assert dialog.problem.get() == "The port must be a number from 1 to 65535, not 'eighty'."
        display.screenshot(tmp_path / 'connect-bad-port.png')
        dialog.values['port'].set(str(sim.port))
        dialog.connect_button.invoke()
        assert window.connect_dialog is None and not saved.exists()
        pump_until(root, lambda: presenter.snapshot is not None)
        settle(window)
        assert window.rows_shown() == 5 and root.title() == f'Qumulo Lock Manager: {sim.host}'

        window.file_menu.invoke('Connect…')
        dialog = window.connect_dialog
        assert dialog.values['host'].get() == sim.host and dialog.values['password'].get() == ''
        dialog.values['password'].set('admin')
        dialog.save_button.invoke()
        assert window.connect_dialog is None
        settle(window)
        assert saved.stat().st_mode & 0o777 == 0o600 and f'Saved to {saved}.' in window.status.get()
    finally:
        window.quit()
    done = subprocess.run(
        [sys.executable, 'qumulo_lock_manager.py', '--list', '--config-file', str(saved)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '/finance/budget-2027.xlsx' in done.stdout and 'dave' in done.stdout


def test_the_program_opens_its_window_without_a_config_file(display, tmp_path):
    (tmp_path / 'home').mkdir()
    program = textwrap.dedent(f"""
        import runpy, sys, tkinter
        start = tkinter.Tk.mainloop
        def mainloop(root, n=0):
            def report_and_close():
                dialogs = [w for w in root.winfo_children() if isinstance(w, tkinter.Toplevel)]
                print(len(dialogs), dialogs[0].title() if dialogs else '')
                root.tk.call(root.protocol('WM_DELETE_WINDOW'))
            root.after(1500, report_and_close)
            start(root, n)
        tkinter.Tk.mainloop = mainloop
        sys.argv = ['qumulo_lock_manager.py']
        runpy.run_path({str(PROJECT / 'qumulo_lock_manager.py')!r}, run_name='__main__')
    """)
    env = dict(os.environ, DISPLAY=display.name, HOME=str(tmp_path / 'home'), XDG_CONFIG_HOME=str(tmp_path / 'xdg'))
    env.pop('QUMULO_LOCK_MANAGER_CONFIG', None)
    env['PYTHONPATH'] = str(PROJECT)
    done = subprocess.run(
        [sys.executable, '-c', program], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0 and done.stderr == ''
    assert done.stdout == '1 Connect to a Qumulo cluster\n'
    assert (tmp_path / 'xdg' / 'qumulo_lock_manager' / 'window.json').exists()
