"""lockmanager.closing: what a close asks before it acts, and which handles it takes."""

from lockmanager.model import SessionRow
from lockmanager.closing import SessionPlan, LISTED_IN_QUESTION, ClosePlan
from tests.lockmanager.conftest import row


def test_the_confirmation_names_files_and_users_and_warns_about_unsaved_work():
    plan = ClosePlan.of(
        [row('/fin/Q3.xlsx', 'alice'), row('/eng/spec.docx', 'bob', file_id='8')], 'the selected handles'
    )
    question = plan.question()
    assert plan.title == 'Close 2 file handles?'
    assert 'held by alice, bob' in question
    assert '/fin/Q3.xlsx  (alice from 10.0.0.5, read)' in question and '/eng/spec.docx' in question
    assert 'unsaved work' in question


def test_a_long_plan_lists_the_first_handles_and_counts_the_rest():
    plan = ClosePlan.of([row(f'/f{n:02}', 'alice', file_id=str(n)) for n in range(LISTED_IN_QUESTION + 3)], 'x')
    assert plan.question().count('(alice from') == LISTED_IN_QUESTION
    assert '... and 3 more' in plan.question()


def test_user_and_client_plans_take_every_handle_of_them():
    rows = [row('/a', 'alice', '10.0.0.5'), row('/b', 'alice', '10.0.0.7'), row('/c', 'bob', '10.0.0.5')]
    assert [r.path for r in ClosePlan.for_users(rows, {'alice'}).rows] == ['/a', '/b']
    assert ClosePlan.for_users(rows, {'alice'}).scope == 'all handles of user alice'
    assert [r.path for r in ClosePlan.for_clients(rows, {'10.0.0.5'}).rows] == ['/a', '/c']


def test_a_handle_shown_once_per_client_is_closed_once():
    twice = [row('/a', 'alice', '10.0.0.5', location='L1'), row('/a', 'alice', '10.0.0.6', location='L1')]
    assert len(ClosePlan.of(twice, 'the selected handles')) == 1


def test_a_session_plan_names_the_sessions_and_the_files_they_hold():
    sessions = [
        SessionRow('s1', 'alice', '500', '10.0.0.5', 'ws-alice', ('Files', 'Finance'), 3, None, None, False, False),
        SessionRow('s2', 'bob', '501', '10.0.0.6', '', (), 0, None, None, False, False),
    ]
    plan = SessionPlan.of(sessions + sessions[:1], 'the sessions matching user alice')
    assert len(plan) == 2 and plan.title == 'Close 2 SMB sessions?'
    question = plan.question()
    assert 'Close the sessions matching user alice: 2 sessions of alice, bob, holding 3 open files.' in question
    assert '  alice from 10.0.0.5 (ws-alice): Files, Finance, 3 open files' in question
    assert '  bob from 10.0.0.6: no share, 0 open files' in question and 'unsaved work' in question
