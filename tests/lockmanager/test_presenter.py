"""The window's logic without a window: LockManagerPresenter with a stand-in view and cluster."""

import csv
from datetime import datetime

import pytest

from common.errors import PRIVILEGE, UNREACHABLE, ToolError
from lockmanager.closing import CloseOutcome
from lockmanager.cluster import Snapshot
from lockmanager.model import HandleRow
from lockmanager.model import SessionRow
from lockmanager.presenter import FILTER_DELAY_S, ConnectForm, LockManagerPresenter
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


def session_row(user, client, n, handles=1, host=''):
    return SessionRow(f'S{n}', user, str(500 + n), client, host, ('fin',), handles, None, None, False, True)


class StandInCluster:
    def __init__(self, rows, may_close=True, sessions=()):
        self.rows = list(rows)
        self.sessions = list(sessions)
        self.may_close = may_close
        self.may_close_sessions = True
        self.may_list_sessions = True
        self.failure = None
        self.vanished = set()  # locations someone else closed after the listing
        self.close_calls = []
        self.name = 'admin'

    def fetch(self):
        if self.failure:
            raise self.failure
        return Snapshot(
            tuple(self.rows),
            datetime(2026, 11, 25, 14, 3, 22),
            self.name,
            self.may_close,
            sessions=tuple(self.sessions) if self.may_list_sessions else (),
            may_close_sessions=self.may_close_sessions,
            may_list_sessions=self.may_list_sessions,
        )

    def close_sessions(self, rows):
        self.close_calls.append([r.location for r in rows])
        gone = {(r.user, r.client) for r in rows}
        self.sessions = [r for r in self.sessions if r not in rows]
        self.rows = [r for r in self.rows if (r.user, r.client) not in gone]
        return [CloseOutcome(r, True) for r in rows]

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
        self.page = None
        self.sessions, self.session_headings, self.sessions_note = [], {}, ''
        self.permissions = ('', '')
        self.details, self.clipboard, self.title, self.connection_asked = {}, None, '', []

    def show_rows(self, page):
        self.page = page
        self.rows = [(r.path, r.user) for r in page.rows]

    def set_headings(self, headings):
        self.headings = dict(headings)

    def show_sessions(self, rows, selected, note):
        self.sessions = [(r.user, r.client) for r in rows]
        self.sessions_note = note

    def set_session_headings(self, headings):
        self.session_headings = dict(headings)

    def set_permissions(self, close_refusal, session_refusal):
        self.permissions = (close_refusal, session_refusal)

    def show_details(self, details):
        self.details = dict(details)

    def copy_text(self, text):
        self.clipboard = text

    def set_title(self, text):
        self.title = text

    def ask_connection(self, form, problem):
        self.connection_asked.append((form, problem))

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
    presenter.select_keys(r.key for r in presenter.visible if (r.user, r.path) in users_and_paths)


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
    assert 'read-only: PRIVILEGE_SMB_FILE_HANDLE_WRITE is missing' in view.status


# --- read-only users ---------------------------------------------------------------------------------


def test_a_read_only_user_gets_no_close_buttons_and_never_the_warning(window):
    window.cluster.may_close = False
    window.cluster.may_close_sessions = False
    window.cluster.sessions = [session_row('bob', '10.0.0.6', 1)]
    view = listed(window)
    assert view.permissions == (
        'read-only: PRIVILEGE_SMB_FILE_HANDLE_WRITE is missing',
        'read-only: PRIVILEGE_SMB_SESSION_WRITE is missing',
    )
    select(window, ('bob', '/fin/Q3.xlsx'))
    window.close_selected()
    window.close_users_of_selection()
    window.close_clients_of_selection()
    window.context_at(0)
    window.close_menu_row()
    window.session_selection_changed([0])
    window.close_selected_sessions()
    assert view.questions == [] and window.cluster.close_calls == [] and not window.jobs.busy
    assert view.status.endswith('read-only: PRIVILEGE_SMB_SESSION_WRITE is missing')
    window.close_selected()
    assert view.status.count('PRIVILEGE_SMB_FILE_HANDLE_WRITE is missing') == 1


def test_before_a_listing_and_for_an_admin_nothing_is_refused(window):
    view = window.stand_in_view
    assert view.permissions == ('', '') and window.close_refusal == ''
    listed(window)
    assert view.permissions == ('', '')


# --- the whole picture: natural sort, details, the row's menu --------------------------------------


def test_a_heading_click_sorts_paths_naturally(window):
    window.cluster.rows = [handle_row(f'/logs/file{n}', 'eve', '10.0.0.9', n) for n in (10, 2, 1, 100)]
    view = listed(window)
    window.sort_by('user')
    window.sort_by('path')
    assert [path for path, _ in view.rows] == ['/logs/file1', '/logs/file2', '/logs/file10', '/logs/file100']
    window.sort_by('path')
    assert [path for path, _ in view.rows] == ['/logs/file100', '/logs/file10', '/logs/file2', '/logs/file1']


def test_the_details_pane_shows_every_field_of_the_clicked_row(window):
    window.cluster.rows = [
        HandleRow(
            'loc-9', '42', '/fin/Q3.xlsx', 'alice', '500', '10.0.0.5', 'read+write',
            ('API_SHARE_MODE_READ', 'API_SHARE_MODE_EXCLUDE_WRITE'), 2, ('API_BYTE_RANGE_EXCLUSIVE',),
            'ws-alice', 'finance', 1_700_000_000.0, 75.0,
        )
    ]  # fmt: skip
    view = listed(window)
    assert view.details == {}
    window.click(0)
    assert view.details == {
        'Path': '/fin/Q3.xlsx',
        'File ID': '42',
        'Share': 'finance',
        'User': 'alice',
        'Auth ID': '500',
        'Client': '10.0.0.5',
        'Host name': 'ws-alice',
        'Access': 'read+write',
        'Share modes': 'read, exclude-write',
        'Byte-range locks': '2 (exclusive)',
        'Open since': view.details['Open since'],
        'Idle': '1 min',
        'Handle location': 'loc-9',
    }
    assert view.details['Open since'].startswith('2023-11-1')
    window.click(None)
    assert window.selected == set()


def test_the_row_menu_copies_the_path_and_closes_exactly_that_handle_or_its_owners(window):
    view = listed(window)
    select(window, ('alice', '/eng/spec.docx'), ('carol', '/art/cover.psd'))
    assert window.context_at(0)  # a selected row: the selection stays
    assert len(window.selected) == 2
    assert window.context_at(3) and window.selected == {'L2 10.0.0.6'}  # bob's: it alone
    assert not window.context_at(9)
    window.copy_menu_path()
    assert view.clipboard == '/fin/Q3.xlsx' and view.status.endswith('Copied the path /fin/Q3.xlsx.')
    window.close_menu_row()
    assert view.questions[-1][0] == 'Close 1 file handle?'
    wait_for_jobs(window.jobs)
    assert window.cluster.close_calls == [['L2']]
    window.context_at(0)  # carol on 10.0.0.5
    window.close_menu_client()
    assert 'all handles of client 10.0.0.5' in view.questions[-1][1]
    wait_for_jobs(window.jobs)
    assert sorted(window.cluster.close_calls[-1]) == ['L1', 'L4']
    window.context_at(0)  # alice's spec.docx
    window.close_menu_user()
    wait_for_jobs(window.jobs)
    assert window.cluster.close_calls[-1] == ['L3'] and view.rows == []


# --- the virtual table ----------------------------------------------------------------------------------

MANY = [handle_row(f'/big/file{n}', f'user{n % 1000}', f'10.1.{n // 250}.{n % 250}', n) for n in range(20_000)]


@pytest.fixture
def big():
    cluster, view = StandInCluster(MANY), StandInView()
    presenter = LockManagerPresenter(cluster, clock=Clock())
    presenter.attach(view)
    presenter.set_rows_in_view(25)
    presenter.refresh()
    wait_for_jobs(presenter.jobs)
    presenter.stand_in_view, presenter.cluster = view, cluster
    yield presenter
    presenter.shutdown()


def test_the_table_draws_only_the_rows_in_view_and_scrolls_through_the_index(big):
    view = big.stand_in_view
    assert len(big.visible) == 20_000 and len(view.page.rows) == 27 and view.page.total == 20_000
    assert view.rows[0][0] == '/big/file0' and view.page.scroll == (0.0, 25 / 20_000)
    big.scroll_wheel(2)
    assert view.page.first == 6 and view.rows[0][0] == '/big/file6'
    big.scroll_pages(1)
    assert view.page.first == 31
    big.scroll_to_fraction(1.0)
    assert view.page.first == 20_000 - 25 and view.rows[24][0] == '/big/file19999' and len(view.rows) == 25
    assert view.page.scroll[1] == 1.0
    big.scroll_to(-5)
    assert view.page.first == 0
    big.set_rows_in_view(40)
    assert len(view.page.rows) == 42


def test_keys_move_and_extend_the_selection_and_keep_it_in_view(big):
    view = big.stand_in_view
    big.move_cursor(1)  # no row yet: the first in view
    assert big.selected == {MANY[0].key} and view.page.selected == {0} and view.page.cursor == 0
    big.move_cursor(1, extend=True)
    big.move_cursor(1, extend=True)
    assert big.selected == {MANY[n].key for n in (0, 1, 2)}
    big.move_cursor(1 << 40)  # End
    assert big.selected == {MANY[19_999].key} and view.page.first == 20_000 - 25
    assert view.page.cursor == 24 and view.page.selected == {24}
    big.move_cursor(-25)  # Page Up
    assert view.page.first == 20_000 - 26 and big.selected == {MANY[19_974].key}
    big.move_cursor(-(1 << 40), extend=True)  # Shift-Home
    assert big.selected_count == 19_975 and view.page.first == 0 and '19,975 selected' in view.status
    big.select_all()
    assert big.selected_count == 20_000


def test_clicks_select_by_key_and_the_selection_outlives_scrolling_sorting_and_filtering(big):
    view = big.stand_in_view
    big.scroll_to(100)
    big.click(0)
    big.click(3, toggle=True)
    big.click(5, extend=True, toggle=True)
    assert big.selected == {MANY[n].key for n in (100, 103, 104, 105)}
    big.click(3, toggle=True)
    assert big.selected == {MANY[n].key for n in (100, 104, 105)}
    big.scroll_to(5000)
    assert view.page.selected == frozenset()
    big.sort_by('path')  # descending now: the row last clicked stays in view
    assert MANY[103].key in {row.key for row in view.page.rows}
    big.filter_changed('/big/file10')
    big.apply_filter()
    assert [r.key for r in big.selected_rows()] == [MANY[105].key, MANY[104].key, MANY[100].key]
    big.click(None)
    assert big.selected == set()


def test_closing_rows_found_by_scrolling_closes_exactly_them(big):
    view = big.stand_in_view
    big.scroll_to_fraction(0.5)
    big.click(0)
    chosen = view.page.rows[0]
    big.close_selected()
    wait_for_jobs(big.jobs)
    assert big.cluster.close_calls == [[chosen.location]]
    assert chosen.key not in {row.key for row in big.visible} and len(big.visible) == 19_999


# --- the Sessions tab ---------------------------------------------------------------------------------


@pytest.fixture
def with_sessions(window):
    window.cluster.sessions = [
        session_row('bob', '10.0.0.6', 1, handles=1),
        session_row('alice', '10.0.0.7', 2, handles=1, host='ws-alice'),
        session_row('alice', '10.0.0.5', 3, handles=1),
        session_row('carol', '10.0.0.5', 4, handles=1),
    ]
    return window


def test_sessions_are_listed_with_the_handles_sorted_and_filtered(with_sessions):
    window = with_sessions
    view = listed(window)
    assert view.sessions == [('alice', '10.0.0.5'), ('alice', '10.0.0.7'), ('bob', '10.0.0.6'), ('carol', '10.0.0.5')]
    assert view.sessions_note == '' and view.session_headings['user'] == 'User ▲'
    assert '4 handles on 3 files, 3 users, 3 clients, 4 sessions' in view.status
    window.sort_sessions_by('client')
    window.sort_sessions_by('client')
    assert view.sessions[0] == ('alice', '10.0.0.7') and view.session_headings['client'] == 'Client ▼'
    window.filter_changed('ws-ali')
    window.apply_filter()
    assert view.sessions == [('alice', '10.0.0.7')]


def test_closing_a_session_asks_then_closes_it_and_its_handles_go(with_sessions):
    window = with_sessions
    view = listed(window)
    window.close_selected_sessions()
    assert view.questions == [] and view.status.endswith('Select one or more sessions first.')
    window.session_selection_changed([0, 3])  # alice and carol on 10.0.0.5
    assert '2 sessions selected' in view.status
    window.close_selected_sessions()
    [(title, question)] = view.questions
    assert title == 'Close 2 SMB sessions?'
    assert question.startswith('Close the selected sessions: 2 sessions of alice, carol, holding 2 open files.')
    assert view.busy == (True, 'Closing 2 sessions…')
    wait_for_jobs(window.jobs)
    assert window.cluster.close_calls == [['S3', 'S4']]
    assert view.sessions == [('alice', '10.0.0.7'), ('bob', '10.0.0.6')]
    assert view.rows == [('/eng/spec.docx', 'alice'), ('/fin/Q3.xlsx', 'bob')]
    assert 'closed 2 of 2 sessions' in view.status and window.sessions_selected == set()


def test_without_the_session_privileges_the_tab_says_why(with_sessions):
    window = with_sessions
    window.cluster.may_list_sessions = False
    window.cluster.name = 'viewer'
    view = window.stand_in_view
    assert view.sessions_note == 'Not listed yet.'
    listed(window)
    assert view.sessions == []
    assert view.sessions_note == 'Sessions are not shown: viewer lacks PRIVILEGE_SMB_SESSION_READ.'
    assert view.permissions[1] == 'sessions are not listed: PRIVILEGE_SMB_SESSION_READ is missing'
    window.close_selected_sessions()
    assert view.status.endswith('sessions are not listed: PRIVILEGE_SMB_SESSION_READ is missing')


# --- connecting from the window ---------------------------------------------------------------------


@pytest.mark.parametrize(
    'fields, problem',
    [
        (dict(host=' '), "Enter the cluster's host name or address."),
        (dict(port='80a'), "The port must be a number from 1 to 65535, not '80a'."),
        (dict(port='70000'), "The port must be a number from 1 to 65535, not '70000'."),
        (dict(port=''), 'Enter the port.'),
        (dict(password=''), 'Enter a user and password, or an access token.'),
        (dict(username='', password='', access_token=' '), 'Enter a user and password, or an access token.'),
        (dict(ca_bundle='/no/such.pem'), 'The CA bundle /no/such.pem is not a file.'),
        (dict(), ''),
        (dict(username='', password='', access_token='access-v1:x'), ''),
    ],
)
def test_the_connect_form_says_what_is_wrong(fields, problem):
    values = dict(host='qumulo.example.com', port='8000', username='admin', password=' s3cret ')
    values.update(fields)
    assert ConnectForm(**values).problem() == problem


def test_the_connect_form_makes_the_config_and_keeps_the_secrets_out_of_its_repr(tmp_path):
    bundle = tmp_path / 'ca.pem'
    bundle.write_text('pem')
    form = ConnectForm(' q.example.com ', ' 8443 ', ' admin ', ' s3cret ', '', str(bundle))
    config = form.config()
    assert (config.host, config.port, config.username, config.password) == ('q.example.com', 8443, 'admin', ' s3cret ')
    assert config.ca_bundle == str(bundle) and config.access_token is None
    assert 's3cret' not in repr(config) and 's3cret' not in repr(ConnectForm.of(config))
    assert ConnectForm.of(config) == ConnectForm('q.example.com', '8443', 'admin', '', '', str(bundle))


@pytest.fixture
def unconnected(tmp_path):
    made = []

    def connect(config):
        made.append(config)
        return StandInCluster(OFFICE)

    view = StandInView()
    presenter = LockManagerPresenter(
        None, clock=Clock(), config_path=str(tmp_path / 'lock.ini'), problem='no config file found', connect=connect
    )
    presenter.attach(view)
    presenter.made, presenter.stand_in_view = made, view
    yield presenter
    presenter.shutdown()


def test_with_no_config_the_first_refresh_asks_for_a_cluster(unconnected):
    view = unconnected.stand_in_view
    assert view.status == 'Not connected: no config file found' and view.title == 'Qumulo Lock Manager'
    unconnected.refresh()
    [(form, problem)] = view.connection_asked
    assert form == ConnectForm() and problem == 'no config file found'
    assert unconnected.connect(ConnectForm(host='', password='x', username='u'), save=False) != ''
    assert unconnected.made == []


def test_connect_lists_from_the_new_cluster_for_this_run_only(unconnected, tmp_path):
    view = unconnected.stand_in_view
    assert unconnected.connect(ConnectForm('q.example.com', '8000', 'admin', 'pw'), save=False) == ''
    wait_for_jobs(unconnected.jobs)
    [config] = unconnected.made
    assert (config.host, config.username, config.password) == ('q.example.com', 'admin', 'pw')
    assert len(view.rows) == 4 and view.title == 'Qumulo Lock Manager: q.example.com'
    assert not (tmp_path / 'lock.ini').exists()
    unconnected.ask_connection()
    assert view.connection_asked[-1] == (ConnectForm('q.example.com', '8000', 'admin', '', '', ''), '')


def test_save_writes_the_config_file_0600_and_connects(unconnected, tmp_path):
    view = unconnected.stand_in_view
    assert unconnected.connect(ConnectForm('q.example.com', '9000', 'admin', ' pw '), save=True) == ''
    wait_for_jobs(unconnected.jobs)
    path = tmp_path / 'lock.ini'
    assert path.stat().st_mode & 0o777 == 0o600
    assert 'API_PORT = 9000' in path.read_text() and 'PASSWORD = " pw "' in path.read_text()
    assert unconnected.made[0].path == str(path) and unconnected.made[0].password == ' pw '
    assert f'Saved to {path}.' in view.status
    unconnected.config_path = str(tmp_path / 'missing' / 'lock.ini')
    problem = unconnected.connect(ConnectForm('q.example.com', '9000', 'admin', 'pw'), save=True)
    assert 'cannot save config file' in problem and len(unconnected.made) == 1


def test_a_listing_of_the_cluster_left_behind_is_dropped(window):
    view = window.stand_in_view
    window.refresh()  # still running when the user connects elsewhere
    window._connect = lambda config: StandInCluster(OFFICE[:1])
    window.connect(ConnectForm('other', '8000', 'admin', 'pw'), save=False)
    wait_for_jobs(window.jobs)
    assert view.rows == [('/fin/Q3.xlsx', 'alice')]


def test_keys_with_no_row_chosen_yet_go_from_the_rows_in_view(big):
    big.move_cursor(-1)  # Up: the last row in view
    assert big.selected == {MANY[24].key}
    big.move_cursor(1 << 40)  # End
    assert big.selected == {MANY[19_999].key}


def test_a_resized_table_keeps_its_end_and_the_chosen_row_in_view(big):
    view = big.stand_in_view
    big.move_cursor(1 << 40)
    big.set_rows_in_view(10)
    assert view.page.first == 19_990 and view.page.cursor == 9
    big.set_rows_in_view(30)
    assert view.page.first == 19_970 and view.rows[29][0] == '/big/file19999'
    big.scroll_to(100)
    big.click(29)
    big.set_rows_in_view(20)
    assert view.page.first == 110 and view.page.cursor == 19
