"""The lock manager window as a real Tk window on a private Xvfb display, against sim/qumulo."""

import os
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest

from common.config import load_cluster_config
from lockmanager.cluster import ConnectingCluster
from lockmanager.presenter import LockManagerPresenter
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

    def start(user='admin'):
        config = load_cluster_config(sim.write_config(tmp_path / f'{user}.ini', USERNAME=user, PASSWORD=user))
        root = gui.open_root('Qumulo Lock Manager: test')
        answers = Answers()
        window = gui.LockManagerWindow(
            root,
            LockManagerPresenter(ConnectingCluster(config)),
            confirm=answers.confirm,
            show_error=answers.show_error,
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
    assert tree.identify_region(x, 8) == 'heading'
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


def test_a_viewer_closing_sees_the_missing_privilege_and_nothing_closes(open_window, sim):
    open_sample_handles(sim)
    window, answers = open_window('viewer')
    assert 'read-only: no PRIVILEGE_SMB_FILE_HANDLE_WRITE' in window.status.get()
    click_row(window, '/design/cover.psd', 'dave')
    window.close_user_button.invoke()
    settle(window)
    assert answers.questions[0][1].startswith('Close all handles of user dave')
    [(title, message)] = answers.errors
    assert title == 'Nothing was closed' and 'PRIVILEGE_SMB_FILE_HANDLE_WRITE' in message
    assert 'error: user viewer lacks the privilege PRIVILEGE_SMB_FILE_HANDLE_WRITE' in window.status.get()
    assert len(listed_handles(sim)) == 5


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
