"""./qumulo_lock_manager.py --list / --close as scripts and people run it, against sim/qumulo."""

import argparse
import csv
import io
import json
import os
import pathlib
import re
import subprocess
import sys

import pexpect
import pytest

from common.errors import NOT_CONFIRMED, NOTHING_MATCHED, SOME_NOT_CLOSED
from lockmanager.cli import list_handles
from lockmanager.cluster import Snapshot
from lockmanager.model import Selector
from tests.lockmanager.conftest import row

PROJECT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = PROJECT / 'qumulo_lock_manager.py'
ERROR = 'qumulo_lock_manager.py: error: '  # how every failure line starts


def run(*args, config=None, cwd=None, env=None):
    """The tool as a subprocess with no terminal and no display."""
    environment = {k: v for k, v in os.environ.items() if k not in ('DISPLAY', 'QUMULO_LOCK_MANAGER_CONFIG')}
    environment.update(env or {})
    command = [sys.executable, str(SCRIPT)] + (['--config-file', str(config)] if config else []) + list(args)
    return subprocess.run(
        command,
        cwd=cwd or PROJECT,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_error_line(done, exit_code, *needles):
    assert done.returncode == exit_code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR), done.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def handles_left(cluster):
    return {
        (h['handle_info']['path'], cluster.client().auth.find_identity(auth_id=h['handle_info']['owner'])['name'])
        for page in cluster.client().smb.list_file_handles(resolve_paths=True)
        for h in page['file_handles']
    }


# --- listing -------------------------------------------------------------------------------------
def test_list_prints_a_table_sorted_by_path(office):
    done = run('--list', config=office.config)
    assert done.returncode == 0 and done.stderr == ''
    heading, *rows = done.stdout.splitlines()
    assert heading.split()[:6] == ['Path', 'Share', 'User', 'Client', 'Host', 'name']
    assert [r.split()[0] for r in rows] == ['/design/cover.psd'] * 2 + ['/finance/budget-2027.xlsx'] + [
        '/finance/Q3.xlsx'
    ] * 2
    assert rows[3].split()[1:4] == ['finance', 'alice', '10.0.0.5'] and ' read+write ' in rows[3]
    assert 'share read/write/exclude-write; 1 byte-range (exclusive)' in rows[3]


def test_list_json_with_path_and_user(office):
    done = run('--list', '--json', '--path', 'q3', '--user', 'BOB', config=office.config)
    assert done.returncode == 0
    [bob] = json.loads(done.stdout)
    assert bob['path'] == '/finance/Q3.xlsx' and bob['client'] == '10.0.0.6' and bob['access'] == 'read'
    assert bob['share_modes'] == ['API_SHARE_MODE_READ'] and bob['location']


def test_list_csv_by_client_and_by_file_id(office):
    done = run('--list', '--csv', '--client', '10.0.1.20', config=office.config)
    [carol] = list(csv.DictReader(io.StringIO(done.stdout)))
    assert carol['user'] == 'carol' and carol['locks'].endswith('2 byte-range (exclusive)')
    done = run('--list', '--csv', '--file-id', carol['file_id'], config=office.config)
    assert sorted(r['user'] for r in csv.DictReader(io.StringIO(done.stdout))) == ['carol', 'dave']


def test_nothing_matched_is_one_line_and_its_own_exit_code(office):
    done = run('--list', '--path', 'nope.txt', config=office.config)
    one_error_line(done, NOTHING_MATCHED, 'no open SMB file handle matched (path containing nope.txt)')
    assert done.stdout == ''
    done = run('--list', '--json', '--user', 'mallory', config=office.config)
    assert done.returncode == NOTHING_MATCHED and json.loads(done.stdout) == []
    one_error_line(
        run('--close', '--path', 'nope.txt', '--yes', config=office.config),
        NOTHING_MATCHED,
        'no open SMB file handle matched (path containing nope.txt)',
    )


def test_list_asks_a_busy_cluster_again(office):
    office.control('fail-next', {'count': 2, 'status': 503, 'retry_after': 0})
    done = run('--list', '--json', config=office.config)
    assert done.returncode == 0 and len(json.loads(done.stdout)) == 5
    assert [line.count('trying again') for line in done.stderr.splitlines()] == [1, 1]


def test_config_comes_from_the_environment_or_the_working_directory(office, tmp_path):
    done = run('--list', '--json', env={'QUMULO_LOCK_MANAGER_CONFIG': str(office.config)})
    assert done.returncode == 0 and len(json.loads(done.stdout)) == 5
    office.write_config(tmp_path / 'qumulo_lock_manager_config.ini')
    done = run('--list', '--json', cwd=tmp_path)
    assert done.returncode == 0 and len(json.loads(done.stdout)) == 5


def test_debug_and_output_log_without_secrets(office, tmp_path):
    log = tmp_path / 'lock.log'
    done = run('--list', '--json', '--debug', '--output', str(log), config=office.config)
    assert done.returncode == 0 and len(json.loads(done.stdout)) == 5  # stdout stays pure JSON
    text = log.read_text()
    assert '/v1/smb/files' in text and 'Authorization: Bearer <redacted>' in text
    assert "'password': '<redacted>'" in text and not re.search(r'session-v1:(?!<redacted>)', text)
    done = run('--list', '--json', '--debug', config=office.config)
    assert json.loads(done.stdout) and '/v1/smb/files' in done.stderr  # logs go to stderr


# --- closing -------------------------------------------------------------------------------------
def test_close_with_yes_closes_only_the_matching_handles(opened):
    done = run('--close', '--path', 'Q3', '--user', 'alice', '--yes', config=opened.config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f'closed /finance/Q3.xlsx (alice from 10.0.0.5, file id {json_row(opened, "Q3", "bob")["file_id"]})',
        'closed 1 of 1 handle',
    ]
    left = handles_left(opened)
    assert ('/finance/Q3.xlsx', 'bob') in left and ('/finance/Q3.xlsx', 'alice') not in left


def json_row(cluster, path, user):
    done = run('--list', '--json', '--path', path, '--user', user, config=cluster.config)
    return json.loads(done.stdout)[0]


def test_close_by_file_id_and_client_reports_json(opened):
    cover = json_row(opened, 'cover', 'dave')
    done = run(
        '--close', '--file-id', cover['file_id'], '--client', '10.0.1.21', '--yes', '--json', config=opened.config
    )
    assert done.returncode == 0
    [outcome] = json.loads(done.stdout)
    assert outcome['closed'] and outcome['user'] == 'dave' and outcome['error'] == ''
    assert ('/design/cover.psd', 'carol') in handles_left(opened)


def test_an_empty_pattern_closes_nothing(opened):
    for pattern in ('', ' ', '\t'):
        one_error_line(run('--close', '--path', pattern, '--yes', config=opened.config), 2, '--path is empty', '--all')
    assert len(handles_left(opened)) == 5


def test_close_all_closes_every_handle_only_when_asked_for(opened):
    one_error_line(run('--close', '--all', config=opened.config), 2, 'not closing 5 handles without confirmation')
    assert len(handles_left(opened)) == 5
    done = run('--close', '--all', '--yes', config=opened.config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == 'closed 5 of 5 handles'
    assert handles_left(opened) == set()


def test_close_without_yes_and_without_a_terminal_refuses(opened):
    done = run('--close', '--path', 'finance', config=opened.config)
    one_error_line(done, 2, 'not closing 3 handles without confirmation', '--yes')
    assert len(handles_left(opened)) == 5


def close_at_a_terminal(opened):
    """`--close --path finance` at a terminal, where it asks before closing."""
    return pexpect.spawn(
        sys.executable,
        [str(SCRIPT), '--config-file', str(opened.config), '--close', '--path', 'finance'],
        cwd=str(PROJECT),
        encoding='utf-8',
        timeout=30,
    )


def test_close_asks_at_a_terminal_and_no_means_nothing_closed(opened):
    child = close_at_a_terminal(opened)
    child.expect(r'Close 3 file handles\? \[y/N\] ')
    question = child.before
    assert 'held by alice, bob' in question and '/finance/budget-2027.xlsx  (alice from 10.0.0.5' in question
    assert 'unsaved work in them may be lost' in question
    child.sendline('n')
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == NOT_CONFIRMED
    assert child.before.splitlines()[-1] == f'{ERROR}nothing closed: the close was not confirmed'

    assert len(handles_left(opened)) == 5


def test_a_handle_that_vanishes_before_the_close_is_named_and_the_rest_close(opened):
    child = close_at_a_terminal(opened)
    child.expect(r'\[y/N\] ')
    bob = json_row(opened, 'Q3', 'bob')
    opened.client().smb.close_smb_file(location=bob['location'])  # bob's client closed it meanwhile
    child.sendline('y')
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == SOME_NOT_CLOSED
    output = child.before
    assert f'{ERROR}not closed: /finance/Q3.xlsx (bob from 10.0.0.6, file id {bob["file_id"]}): ' in output
    assert 'closed /finance/budget-2027.xlsx (alice' in output and 'closed 2 of 3 handles; 1 failed' in output
    assert 'Traceback' not in output
    assert {path for path, _ in handles_left(opened)} == {'/design/cover.psd'}


# --- bad inputs: one line and an exit code each --------------------------------------------------
def test_a_viewer_may_list_but_closing_names_the_missing_privilege(opened, tmp_path):
    viewer = opened.write_config(tmp_path / 'viewer.ini', USERNAME='viewer', PASSWORD='viewer')
    assert run('--list', config=viewer).returncode == 0
    done = run('--close', '--path', 'Q3', '--yes', config=viewer)
    one_error_line(done, 7, 'user viewer lacks the privilege PRIVILEGE_SMB_FILE_HANDLE_WRITE')
    assert len(handles_left(opened)) == 5


def test_a_user_without_smb_privileges_cannot_list(office, tmp_path):
    nolock = office.write_config(tmp_path / 'nolock.ini', USERNAME='nolock', PASSWORD='nolock')
    one_error_line(run('--list', config=nolock), 7, 'PRIVILEGE_SMB_FILE_HANDLE_READ', 'PRIVILEGE_FS_LOCK_READ')


@pytest.mark.slow  # six runs of the tool
def test_bad_password_unreachable_cluster_and_missing_config(office, tmp_path):
    wrong = office.write_config(tmp_path / 'wrong.ini', PASSWORD='guess')
    line = one_error_line(run('--list', config=wrong), 6, 'rejected the credentials', str(wrong))
    assert 'guess' not in line
    closed_port = office.write_config(tmp_path / 'port.ini', API_PORT=1)
    one_error_line(run('--list', config=closed_port), 4, 'cannot reach the cluster at 127.0.0.2:1')
    one_error_line(run('--list', config=tmp_path / 'none.ini'), 3, 'none.ini: config file not found')
    one_error_line(run('--list', cwd=tmp_path), 3, 'no config file found', 'qumulo_lock_manager_config.ini')
    unreadable = tmp_path / 'dir.ini'
    unreadable.mkdir()
    one_error_line(run('--list', config=unreadable), 3, 'dir.ini')


@pytest.mark.parametrize(
    'args, needle',
    [
        (['--bogus'], 'unrecognized arguments: --bogus'),
        (['--close'], '--close needs --path TEXT or --file-id N'),
        (['--list', '--close'], 'not allowed with argument'),
        (['--list', '--json', '--csv'], 'not allowed with argument'),
        (['--close', '--path', 'x', '--csv'], '--csv goes with --list'),
        (['--list', '--yes'], '--yes goes with --close'),
        (['--path', 'x'], '--path goes with --list, --close, --sessions or --close-session'),
        (['--list', '--file-id', 'abc'], "a file id is a number, not 'abc'"),
        (['--list', '--auto-refresh', '5'], '--auto-refresh is for the window'),
        (['--auto-refresh', '0'], 'expected seconds from 1 to 86400'),
        (['--close', '--path', '', '--yes'], '--path is empty'),
        (['--close', '--path', '   ', '--yes'], '--path is empty'),
        (['--list', '--user', ''], '--user is empty'),
        (['--close', '--file-id', '7', '--client', ' ', '--yes'], '--client is empty'),
        (['--close', '--all', '--path', 'x', '--yes'], '--all closes every handle: it does not go with --path'),
        (['--list', '--all'], '--all goes with --close'),
        (['--list', '--dry-run'], '--dry-run goes with --close or --close-session'),
        (['--close', '--path', 'x', '--dry-run', '--yes'], '--dry-run closes nothing: it does not go with --yes'),
        (['--close-session'], '--close-session needs --user NAME or --client ADDRESS, or --all'),
        (['--sessions', '--path', 'x'], 'a session has no path or file'),
        (['--close-session', '--file-id', '7', '--yes'], 'a session has no path or file'),
        (['--sessions', '--close'], 'not allowed with argument'),
        (['--close-session', '--user', 'bob', '--csv'], '--csv goes with --list or --sessions'),
    ],
)
def test_a_wrong_command_line_is_one_line_and_exit_2(args, needle):
    one_error_line(run(*args), 2, needle)


def test_without_a_display_the_window_says_it_needs_one(office):
    one_error_line(run(config=office.config), 2, 'needs a display ($DISPLAY is not set)', '--list')


@pytest.mark.parametrize('user, password', [('viewer', 'viewer'), ('spaced', ' Grüße 2027 ')])
def test_configure_writes_a_private_config_that_list_then_uses(office, tmp_path, user, password):
    path = tmp_path / 'new.ini'
    child = pexpect.spawn(
        sys.executable,
        [str(SCRIPT), '--configure', '--config-file', str(path)],
        cwd=str(PROJECT),
        encoding='utf-8',
        timeout=30,
    )
    for prompt, answer in (
        ('API Host', office.host),
        ('API Port', str(office.port)),
        ('Username', user),
        ('Password', password),
        ('Access Token', ''),
    ):
        child.expect(prompt)
        child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and password.strip() not in child.before.split('Password')[-1]
    assert path.stat().st_mode & 0o777 == 0o600
    log = tmp_path / 'debug.log'
    done = run('--list', '--json', '--debug', '--output', str(log), config=path)
    assert done.returncode == 0, done.stderr
    text = log.read_text()
    assert "'password': '<redacted>'" in text and f"'password': {password!r}" not in text
    assert f"'username': '{user}'" in text and 'Grüße' not in text


def test_the_help_gives_each_exit_code_the_meaning_common_errors_gives_it():
    done = run('--help')
    assert done.returncode == 0 and done.stderr == ''
    codes = {int(line.split()[0]): line for line in done.stdout.split('exit codes:\n')[1].splitlines()}
    assert sorted(codes) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, SOME_NOT_CLOSED, NOT_CONFIRMED, NOTHING_MATCHED, 130]
    assert 'not confirmed' in codes[NOT_CONFIRMED] and 'no open handle (or session) matched' in codes[NOTHING_MATCHED]
    assert 10 not in codes  # the pytarchive service's code: one meaning per code


def test_started_by_the_system_python_help_and_a_bad_flag_give_no_traceback():
    # The executable's #! line names the system's python3, which lacks the SDK: it moves over to .venv.
    python = getattr(sys, '_base_executable', None) or '/usr/bin/python3'
    for args, code in ((['--help'], 0), (['--bogus'], 2)):
        done = subprocess.run(
            [python, str(SCRIPT), *args],
            cwd=PROJECT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == code and 'Traceback' not in done.stderr + done.stdout
    assert done.stderr == f'{ERROR}unrecognized arguments: --bogus (see --help)\n'


def test_a_degraded_listing_says_why_in_a_warning_and_stdout_stays_the_report(capsys, caplog):
    class Listing:
        def fetch(self):
            return Snapshot((row(),), None, 'viewer', False, ('user names need PRIVILEGE_IDENTITY_READ',))

    args = argparse.Namespace(json=True, csv=False)
    assert list_handles(Listing(), Selector(), args) == 0
    assert [r['path'] for r in json.loads(capsys.readouterr().out)] == ['/s/a.txt']
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ('WARNING', 'user names need PRIVILEGE_IDENTITY_READ')
    ]


# --- dry runs and sessions -------------------------------------------------------------------------
def test_a_dry_run_shows_what_and_how_many_and_closes_nothing(opened):
    done = run('--close', '--path', 'Q3', '--dry-run', config=opened.config)
    assert done.returncode == 0, done.stderr
    assert 'Close the handles matching path containing Q3: 2 handles on 1 file, held by alice, bob.' in done.stdout
    assert '/finance/Q3.xlsx  (alice from 10.0.0.5, read+write)' in done.stdout
    assert done.stdout.rstrip().endswith('dry run: 2 handles would be closed; nothing was closed')
    assert len(handles_left(opened)) == 5


def test_a_read_only_user_may_dry_run_but_is_refused_a_close_before_anything_is_asked(opened, tmp_path):
    viewer = opened.write_config(tmp_path / 'viewer.ini', USERNAME='viewer', PASSWORD='viewer')
    assert run('--close', '--path', 'Q3', '--dry-run', config=viewer).returncode == 0
    child = pexpect.spawn(
        sys.executable, [str(SCRIPT), '--config-file', str(viewer), '--close', '--path', 'Q3'], encoding='utf-8'
    )
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    assert child.exitstatus == 7 and 'PRIVILEGE_SMB_FILE_HANDLE_WRITE' in child.before
    assert '[y/N]' not in child.before  # refused before the question
    one_error_line(run('--close-session', '--user', 'bob', '--yes', config=viewer), 7, 'PRIVILEGE_SMB_SESSION_WRITE')
    assert len(handles_left(opened)) == 5


def test_sessions_are_listed_as_a_table_json_and_csv(opened):
    opened.control('dns', {'ip_address': '10.0.0.5', 'hostname': 'ws-alice.example.com'})
    table = run('--sessions', config=opened.config)
    assert table.returncode == 0, table.stderr
    heading, *rows = table.stdout.splitlines()
    assert heading.split()[:5] == ['User', 'Client', 'Host', 'name', 'Shares'] and len(rows) == 4
    assert rows[0].split()[:4] == ['alice', '10.0.0.5', 'ws-alice.example.com', 'finance']
    [bob] = json.loads(run('--sessions', '--json', '--user', 'bob', config=opened.config).stdout)
    assert (bob['client'], bob['shares'], bob['open_handles'], bob['guest']) == ('10.0.0.6', ['finance'], 1, False)
    assert bob['opened'] and bob['idle_s'] >= 0 and bob['location']
    parsed = list(csv.DictReader(io.StringIO(run('--sessions', '--csv', config=opened.config).stdout)))
    assert [r['user'] for r in parsed] == ['alice', 'bob', 'carol', 'dave'] and parsed[0]['encrypted'] == 'no'
    none = run('--sessions', '--client', '10.9.9.9', config=opened.config)
    one_error_line(none, NOTHING_MATCHED, 'no SMB session matched (client 10.9.9.9)')


def test_closing_a_session_needs_yes_without_a_terminal_and_closes_its_files(opened):
    done = run('--close-session', '--user', 'alice', config=opened.config)
    one_error_line(done, 2, 'not closing 1 session without confirmation', '--yes')
    dry = run('--close-session', '--client', '10.0.0.5', '--dry-run', config=opened.config)
    assert 'alice from 10.0.0.5: finance, 2 open files' in dry.stdout and len(handles_left(opened)) == 5
    done = run('--close-session', '--user', 'alice', '--yes', config=opened.config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == 'closed 1 of 1 session'
    assert {user for _, user in handles_left(opened)} == {'bob', 'carol', 'dave'}


def test_one_user_on_two_clients_gets_a_row_per_handle_each_with_its_clients_modes(sim, tmp_path):
    sim.control(
        'smb/open',
        [
            {'path': '/fin/Q3.xlsx', 'user': 'alice', 'client': '10.0.0.5', 'access': 'read'},
            {'path': '/fin/Q3.xlsx', 'user': 'alice', 'client': '10.0.0.6', 'access': 'write'},
        ],
    )
    sim.control('dns', [{'ip_address': '10.0.0.6', 'hostname': 'laptop-alice'}])
    done = run('--list', '--json', config=sim.write_config(tmp_path / 'c.ini'))
    rows = sorted(json.loads(done.stdout), key=lambda r: r['client'])
    assert [(r['client'], r['host'], r['access'], r['share_modes']) for r in rows] == [
        ('10.0.0.5', '', 'read', ['API_SHARE_MODE_READ']),
        ('10.0.0.6', 'laptop-alice', 'read+write',
         ['API_SHARE_MODE_READ', 'API_SHARE_MODE_WRITE', 'API_SHARE_MODE_EXCLUDE_WRITE']),
    ]  # fmt: skip
    assert {r['share'] for r in rows} == {'fin'} and all(r['opened'] and r['idle_s'] is not None for r in rows)
