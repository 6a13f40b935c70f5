"""The window's logic without a window: LockManagerPresenter with a stand-in view and cluster."""

import csv
from datetime import datetime

import pytest

from common.errors import PRIVILEGE, UNREACHABLE, ToolError
from lockmanager.closing import CloseOutcome
from lockmanager.cluster import Snapshot
from lockmanager.model import HandleRow
from lockmanager.presenter import FILTER_DELAY_S, LockManagerPresenter, RowFeed
from tests.lockmanager.conftest import wait_for_jobs


FILE_IDS = {}  # path -> file id, so that handles of one file share it


def handle_row(path, user, client, n):
    file_id = FILE_IDS.setdefault(path, str(100 + len(FILE_IDS)))
    return HandleRow(
        location=f'L{n}',
        file_id=file_id,
        path=path,
        user=user,
        auth_id=str(500 + n),
        client=client,
        access='read+write',
        share_modes=('API_SHARE_MODE_READ',),
        byte_range_locks=0,
    )


OFFICE = [
    handle_row('/fin/Q3.xlsx', 'alice', '10.0.0.5', 1),
    handle_row('/fin/Q3.xlsx', 'bob', '10.0.0.6', 2),
    handle_row('/eng/spec.docx', 'alice', '10.0.0.7', 3),
    handle_row('/art/cover.psd', 'carol', '10.0.0.5', 4),
]


class StandInCluster:
    def __init__(self, rows, may_close=True):
        self.rows = list(rows)
        self.may_close = may_close
        self.failure = None
        self.vanished = set()  # locations someone else closed after the listing
        self.close_calls = []

    def fetch(self):
        if self.failure:
            raise self.failure
        return Snapshot(tuple(self.rows), datetime(2026, 11, 25, 14, 3, 22), 'admin', self.may_close)

    def close(self, rows):
        if not self.may_close:
            raise ToolError('user viewer lacks the privilege PRIVILEGE_SMB_FILE_HANDLE_WRITE', PRIVILEGE)
        self.close_calls.append([r.location for r in rows])
        self.rows = [r for r in self.rows if r not in rows]
        return [
            CloseOutcome(r, r.location not in self.vanished, 'gone' if r.location in self.vanished else '')
            for r in rows
        ]


class StandInView:
    def __init__(self, answer=True, save_path=None):
        self.answer = answer
        self.save_path = save_path
        self.rows, self.headings, self.errors, self.questions = [], {}, [], []
        self.busy, self.status = (False, ''), ''

    def show_rows(self, rows):
        self.rows = [(r.path, r.user) for r in rows]

    def set_headings(self, headings):
        self.headings = dict(headings)

    def set_busy(self, busy, text):
        self.busy = (busy, text)

    def set_status(self, text):
        self.status = text

    def show_error(self, title, message):
        self.errors.append((title, message))

    def confirm(self, title, message):
        self.questions.append((title, message))
        return self.answer

    def ask_save_path(self):
        return self.save_path


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def window():
    cluster, view, clock = StandInCluster(OFFICE), StandInView(), Clock()
    presenter = LockManagerPresenter(cluster, clock=clock)
    presenter.attach(view)
    presenter.cluster, presenter.stand_in_view, presenter.stand_in_clock = cluster, view, clock
    yield presenter
    presenter.shutdown()


def listed(presenter):
    presenter.refresh()
    wait_for_jobs(presenter.jobs)
    return presenter.stand_in_view


def select(presenter, *users_and_paths):
    presenter.selection_changed(r.key for r in presenter.visible if (r.user, r.path) in users_and_paths)


def test_refresh_lists_in_the_background_sorted_by_path_with_counts_in_the_status(window):
    view = window.stand_in_view
    window.refresh()
    assert view.busy == (True, 'Listing handles…')
    wait_for_jobs(window.jobs)
    assert view.busy == (False, '')
    assert view.rows == [
        ('/art/cover.psd', 'carol'),
        ('/eng/spec.docx', 'alice'),
        ('/fin/Q3.xlsx', 'alice'),
        ('/fin/Q3.xlsx', 'bob'),
    ]
    assert view.status == '4 handles on 3 files, 3 users, 3 clients  ·  listed at 14:03:22 as admin'
    assert view.headings['path'] == 'Path ▲' and view.headings['user'] == 'User'


def test_typing_filters_once_typing_pauses(window):
    view = listed(window)
    window.filter_changed('10.0.0.5')
    window.tick()
    assert len(view.rows) == 4  # still typing
    window.stand_in_clock.now += FILTER_DELAY_S
    window.tick()
    assert view.rows == [('/art/cover.psd', 'carol'), ('/fin/Q3.xlsx', 'alice')]
    assert '2 shown' in view.status


def test_search_by_path_filters_at_once_and_lists_again(window):
    view = listed(window)
    window.cluster.rows.append(handle_row('/fin/Q4.xlsx', 'dave', '10.0.0.8', 5))
    window.filter_changed('fin/')
    window.search()
    wait_for_jobs(window.jobs)
    assert view.rows == [('/fin/Q3.xlsx', 'alice'), ('/fin/Q3.xlsx', 'bob'), ('/fin/Q4.xlsx', 'dave')]


def test_a_heading_click_sorts_and_a_second_one_reverses(window):
    view = listed(window)
    window.sort_by('user')
    assert [user for _, user in view.rows] == ['alice', 'alice', 'bob', 'carol']
    assert view.headings['user'] == 'User ▲' and view.headings['path'] == 'Path'
    window.sort_by('user')
    assert [user for _, user in view.rows] == ['carol', 'bob', 'alice', 'alice']
    assert view.headings['user'] == 'User ▼'


def test_closing_the_selection_asks_once_then_closes_exactly_it_and_lists_again(window):
    view = listed(window)
    select(window, ('alice', '/fin/Q3.xlsx'), ('carol', '/art/cover.psd'))
    assert '2 selected' in view.status
    window.close_selected()
    [(title, question)] = view.questions
    assert title == 'Close 2 file handles?' and 'alice, carol' in question and 'unsaved work' in question
    assert view.busy == (True, 'Closing 2 handles…')
    wait_for_jobs(window.jobs)
    assert window.cluster.close_calls == [['L4', 'L1']]
    assert view.rows == [('/eng/spec.docx', 'alice'), ('/fin/Q3.xlsx', 'bob')]
    assert window.selected == set() and 'closed 2 of 2 handles' in view.status


def test_answering_no_or_selecting_nothing_closes_nothing(window):
    view = listed(window)
    window.close_selected()
    assert view.questions == [] and view.status.endswith('Select one or more handles first.')
    select(window, ('bob', '/fin/Q3.xlsx'))
    view.answer = False
    window.close_selected()
    assert len(view.questions) == 1 and view.status.endswith('Nothing closed.')
    assert window.cluster.close_calls == []


def test_closing_a_user_or_client_takes_their_handles_hidden_by_the_filter_too(window):
    view = listed(window)
    window.filter_changed('fin/')
    window.search()
    wait_for_jobs(window.jobs)
    select(window, ('alice', '/fin/Q3.xlsx'))
    window.close_users_of_selection()
    assert view.questions[-1][1].startswith('Close all handles of user alice: 2 handles on 2 files')
    wait_for_jobs(window.jobs)
    assert window.cluster.close_calls == [['L1', 'L3']]
    window.filter_changed('')
    window.search()
    wait_for_jobs(window.jobs)
    select(window, ('carol', '/art/cover.psd'))
    window.close_clients_of_selection()
    assert 'all handles of client 10.0.0.5' in view.questions[-1][1]
    wait_for_jobs(window.jobs)
    assert window.cluster.close_calls[-1] == ['L4']


def test_a_partly_failed_close_lists_what_was_not_closed(window):
    view = listed(window)
    window.cluster.vanished.add('L2')
    select(window, ('alice', '/fin/Q3.xlsx'), ('bob', '/fin/Q3.xlsx'))
    window.close_selected()
    wait_for_jobs(window.jobs)
    [(title, message)] = view.errors
    assert title == 'Some handles were not closed'
    assert message == 'not closed: /fin/Q3.xlsx (bob from 10.0.0.6, file id 100): gone'
    assert 'closed 1 of 2 handles; 1 failed' in view.status


def test_a_refused_close_shows_the_privilege_in_a_dialog_and_the_status_bar(window):
    view = listed(window)
    window.cluster.may_close = False
    select(window, ('bob', '/fin/Q3.xlsx'))
    window.close_selected()
    wait_for_jobs(window.jobs)
    assert view.errors == [('Nothing was closed', 'user viewer lacks the privilege PRIVILEGE_SMB_FILE_HANDLE_WRITE')]
    assert view.status.endswith('error: user viewer lacks the privilege PRIVILEGE_SMB_FILE_HANDLE_WRITE')
    assert view.busy == (False, '') and len(view.rows) == 4


def test_a_failed_listing_shows_a_dialog_once_and_keeps_the_status_until_it_works(window):
    view = listed(window)
    window.cluster.failure = ToolError('cannot reach the cluster at 10.1.1.1:8000: timed out', UNREACHABLE)
    for _ in range(2):
        window.refresh()
        wait_for_jobs(window.jobs)
    assert view.errors == [('Cannot list the SMB file handles', 'cannot reach the cluster at 10.1.1.1:8000: timed out')]
    assert view.status.endswith('error: cannot reach the cluster at 10.1.1.1:8000: timed out')
    assert len(view.rows) == 4  # the last good listing stays on screen
    window.cluster.failure = None
    listed(window)
    assert 'error' not in view.status


def test_a_bug_in_a_background_call_is_a_dialog_not_a_traceback(window):
    view = window.stand_in_view
    window.cluster.failure = KeyError('handle_info')
    window.refresh()
    wait_for_jobs(window.jobs)
    assert view.errors == [('Cannot list the SMB file handles', "unexpected KeyError: 'handle_info'")]
    assert view.busy == (False, '')


def test_auto_refresh_lists_again_when_due_and_never_twice_at_once(window):
    view = listed(window)
    window.set_auto_refresh(30)
    assert 'auto-refresh every 30 s' in view.status
    window.cluster.rows.pop()
    window.stand_in_clock.now += 29
    window.tick()
    assert view.busy == (False, '')
    window.stand_in_clock.now += 1
    window.tick()
    assert view.busy == (True, 'Listing handles…')
    window.tick()
    window.refresh()  # a click while listing: the running listing is enough
    wait_for_jobs(window.jobs)
    assert len(view.rows) == 3
    window.set_auto_refresh(0)
    window.stand_in_clock.now += 3600
    window.tick()
    assert view.busy == (False, '')


def test_the_selection_survives_a_refresh_unless_its_handle_is_gone(window):
    listed(window)
    select(window, ('alice', '/fin/Q3.xlsx'), ('bob', '/fin/Q3.xlsx'))
    window.cluster.rows = [r for r in window.cluster.rows if r.user != 'bob']
    listed(window)
    assert window.selected == {'L1 10.0.0.5'}  # a row's key: its handle and client


def test_export_writes_the_shown_rows_as_csv(window, tmp_path):
    view = listed(window)
    window.filter_changed('alice')
    window.search()
    wait_for_jobs(window.jobs)
    view.save_path = str(tmp_path / 'handles.csv')
    window.export_visible()
    rows = list(csv.DictReader(open(view.save_path, newline='')))
    assert [(r['path'], r['user']) for r in rows] == [('/eng/spec.docx', 'alice'), ('/fin/Q3.xlsx', 'alice')]
    assert view.status.endswith(f'Exported 2 rows to {view.save_path}.')
    view.save_path = str(tmp_path / 'missing' / 'x.csv')
    window.export_visible()
    assert view.errors[-1][0] == 'Cannot export' and 'No such file or directory' in view.errors[-1][1]


def test_a_read_only_user_is_told_in_the_status_bar(window):
    window.cluster.may_close = False
    view = listed(window)
    assert 'read-only: no PRIVILEGE_SMB_FILE_HANDLE_WRITE' in view.status


def test_the_table_is_fed_in_batches_and_a_newer_feed_stops_an_older_one():
    feed = RowFeed(batch=3)
    rows = [handle_row(f'/f{n}', 'alice', '10.0.0.5', n) for n in range(7)]
    first = feed.start(rows)
    assert [item for item, _ in feed.next_batch(first)] == ['L0 10.0.0.5', 'L1 10.0.0.5', 'L2 10.0.0.5']
    assert feed.next_batch(first)[0][1][0] == '/f3'
    second = feed.start(rows[:2])
    assert feed.next_batch(first) is None and feed.done(first)
    assert len(feed.next_batch(second)) == 2 and feed.done(second) and feed.next_batch(second) is None
