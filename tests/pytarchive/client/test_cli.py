"""The client's command line: what each command sends to the service, one line with exit status 2
for every malformed command (before anything is sent), one line for a service that is not running,
and nothing of the service's side (database, queue, tasks) imported by the client."""

import socket
import subprocess

import pytest

from pytarchive.client import cli as client
from tests.pytarchive.rig import PYTHON, REPO


def request_for(*argv):
    parser = client.build_parser()
    args = parser.parse_args(list(argv))
    return args.command, client.build_request(parser, args)


def test_each_command_sends_what_the_service_needs():
    assert request_for('prepare', '/data/x', 'raw data') == ('prepare', {'path': '/data/x', 'description': 'raw data'})
    assert request_for('prepare', '/data/x') == ('prepare', {'path': '/data/x', 'description': ''})
    assert request_for('archive', '/data/x', 'TPN123L9', '--wait') == (
        'archive',
        {'path': '/data/x', 'barcode': 'TPN123L9'},
    )
    assert request_for('restore', '/data/x', '--to', '/restore', '--only', 'a/b c', '--force') == (
        'restore',
        {'path': '/data/x', 'to': '/restore', 'only': 'a/b c', 'force': True},
    )
    assert request_for('restore', '/data/x') == ('restore', {'path': '/data/x', 'to': None, 'only': '', 'force': False})
    assert request_for('explore', '/data/x') == ('explore', {'path': '/data/x'})
    assert request_for('explore', '--stop') == ('explore', {'stop': True})
    assert request_for('deleteable', '--json') == ('deleteable', {'json': True})
    assert request_for('inventory') == ('inventory', {'json': False})
    assert request_for('cancel', '3,5', '7') == ('cancel', {'ids': [3, 5, 7]})
    assert request_for('find', 'raw/*.tif', '--limit', '50') == (
        'find',
        {'pattern': 'raw/*.tif', 'limit': 50, 'json': False},
    )
    assert request_for('ls', 'TPN001L9') == ('ls', {'target': 'TPN001L9', 'subpath': '', 'limit': 1000, 'json': False})
    assert request_for('ls', '/data/x', 'sub', '--json')[1]['subpath'] == 'sub'
    assert request_for('history', '/data/x') == ('history', {'path': '/data/x', 'json': False})
    assert request_for('queue') == ('queue', {'json': False, 'all': False})
    assert request_for('queue', '--all', '--json') == ('queue', {'json': True, 'all': True})
    assert request_for('queue', '12') == ('queue', {'json': False, 'all': False, 'id': 12})
    assert request_for('import', 'TPN002L9', '--wait') == ('import', {'barcode': 'TPN002L9'})


@pytest.mark.parametrize(
    'argv, message',
    [
        (['archive', '/data/x'], 'the following arguments are required: BARCODE'),
        (['restore'], 'the following arguments are required: PATH'),
        (['explore'], "explore: give the archived folder's PATH, or --stop"),
        (['explore', '/data/x', '--stop'], "explore: give the archived folder's PATH, or --stop"),
        (['restore', '/data/x', '--only'], 'argument --only: expected one argument'),
        (['inventory', '--wait'], 'unrecognized arguments: --wait'),
        (['deleteable', '--force'], 'unrecognized arguments: --force'),
        (['cancel'], 'the following arguments are required: ID[,ID...]'),
        (['find'], 'the following arguments are required: PATTERN'),
        (['history'], 'the following arguments are required: PATH'),
        (['import'], 'the following arguments are required: BARCODE'),
        (['cancel', 'x'], "cancel: 'x' is not a task id"),
        (['queue', '3', '--all'], 'queue: give one task id'),
        (['queue', 'three'], "argument ID: invalid int value: 'three'"),
    ],
)
def test_malformed_commands_are_one_line_and_exit_2(argv, message):
    done = subprocess.run([PYTHON, '-m', 'pytarchive', *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ''
    assert done.stderr.count('\n') == 1 and message in done.stderr, done.stderr


def test_the_client_says_in_one_line_when_the_service_is_not_running(tmp_path):
    missing = tmp_path / 'run' / 'pytarchive.sock'
    config = tmp_path / 'p.conf'
    config.write_text(f'[Device]\nlibrary = /dev/sch0\ndrive_serial = 10WT0\n[Service]\nsocket = {missing}\n')

    def run(*args):
        return subprocess.run([PYTHON, '-m', 'pytarchive', *args], cwd=REPO, capture_output=True, text=True, timeout=60)

    done = run('--config-file', str(config), 'queue')
    assert (done.returncode, done.stdout) == (10, '')
    assert done.stderr == f'pytarchive: error: the pytarchive service is not running (no socket at {missing})\n'

    # A socket file left behind by a service that died: nobody listens on it.
    missing.parent.mkdir()
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(missing))
    done = run('queue', '--config', str(config))  # the option's older name
    assert (done.returncode, done.stderr) == (
        10,
        f'pytarchive: error: the pytarchive service is not running (nothing answers on {missing})\n',
    )

    done = run('--config-file', str(tmp_path / 'nope.conf'), 'summary')
    assert (done.returncode, done.stderr) == (
        3,
        f'pytarchive: error: {tmp_path / "nope.conf"}: config file not found\n',
    )
    done = run('summary', '--config', str(tmp_path / 'nope.conf'))
    assert (done.returncode, done.stderr) == (
        3,
        f'pytarchive: error: {tmp_path / "nope.conf"}: config file not found\n',
    )


def test_config_file_and_its_older_name_config_set_the_same_option():
    assert client.build_parser().parse_args(['--config-file', '/x.conf', 'queue']).config == '/x.conf'
    assert client.build_parser().parse_args(['queue', '--config', '/y.conf']).config == '/y.conf'
    assert client.build_parser().parse_args(['queue', '--config-file', '/z.conf']).config == '/z.conf'


def test_the_client_imports_nothing_of_the_service_side():
    """The client runs as any user with only a socket: importing it must not load the database layer
    (sqlite3), the task queue, the tasks or the service."""
    code = (
        'import sys, pytarchive.client.cli\n'
        'print(" ".join(sorted(name for name in sys.modules if name.startswith(("sqlite3", "_sqlite3", '
        '"pytarchive.state", "pytarchive.taskqueue", "pytarchive.tasks", "pytarchive.service")))))'
    )
    done = subprocess.run([PYTHON, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout == '\n', done.stdout
