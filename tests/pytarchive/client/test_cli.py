"""The client's command line for the workflow commands: what each sends to the service, and one
line with exit status 2 for every malformed command (before anything is sent)."""

import subprocess

import pytest

from pytarchive import client
from tests.pytarchive.rig import PYTHON, REPO


def request_for(*argv):
    parser = client.build_parser()
    args = parser.parse_args(list(argv))
    return args.command, client.build_request(parser, args)


def test_each_command_sends_what_the_service_needs():
    assert request_for('prepare', '/data/x', 'raw data') == ('prepare', {'path': '/data/x', 'description': 'raw data'})
    assert request_for('prepare', '/data/x') == ('prepare', {'path': '/data/x', 'description': ''})
    assert request_for('archive', '/data/x', 'TPN123L9', '--wait') == (
        'archive', {'path': '/data/x', 'barcode': 'TPN123L9'})
    assert request_for('restore', '/data/x', '--to', '/restore', '--only', 'a/b c', '--force') == (
        'restore', {'path': '/data/x', 'to': '/restore', 'only': 'a/b c', 'force': True})
    assert request_for('restore', '/data/x') == ('restore', {'path': '/data/x', 'to': None, 'only': '', 'force': False})
    assert request_for('explore', '/data/x') == ('explore', {'path': '/data/x'})
    assert request_for('explore', '--stop') == ('explore', {'stop': True})
    assert request_for('deleteable', '--json') == ('deleteable', {'json': True})
    assert request_for('inventory') == ('inventory', {'json': False})


@pytest.mark.parametrize('argv, message', [
    (['archive', '/data/x'], 'the following arguments are required: BARCODE'),
    (['restore'], 'the following arguments are required: PATH'),
    (['explore'], "explore: give the archived folder's PATH, or --stop"),
    (['explore', '/data/x', '--stop'], "explore: give the archived folder's PATH, or --stop"),
    (['restore', '/data/x', '--only'], 'argument --only: expected one argument'),
    (['inventory', '--wait'], 'unrecognized arguments: --wait'),
    (['deleteable', '--force'], 'unrecognized arguments: --force'),
])
def test_malformed_commands_are_one_line_and_exit_2(argv, message):
    done = subprocess.run([PYTHON, '-m', 'pytarchive', *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ''
    assert done.stderr.count('\n') == 1 and message in done.stderr, done.stderr
