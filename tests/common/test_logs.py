"""common.logs: where log lines go, debug levels, and that secrets never reach them."""

import argparse
import logging

import pytest
from qumulo.lib.identity_util import Identity

from common import errors
from common.auth import connect, who_am_i
from common.config import load_cluster_config
from common.errors import ToolError
from common.logs import SDK_LOGGER, add_common_arguments, register_secret, setup_logging


@pytest.fixture(autouse=True)
def restore_logging():
    """setup_logging configures the process-wide root logger: put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    sdk_level = logging.getLogger(SDK_LOGGER).level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    logging.getLogger(SDK_LOGGER).setLevel(sdk_level)


def test_console_logging_goes_to_stdout_at_info(capsys):
    assert setup_logging() is None  # tools log through their own logging.getLogger(__name__)
    log = logging.getLogger(__name__)
    log.info('watching /data')
    log.debug('not shown without --debug')
    out, err = capsys.readouterr()
    assert ' - INFO - watching /data' in out
    assert 'not shown' not in out and err == ''


def test_output_file_instead_of_console(tmp_path, capsys):
    path = tmp_path / 'tool.log'
    setup_logging(output=str(path))
    log = logging.getLogger(__name__)
    log.warning('locked %d files', 3)
    assert ' - WARNING - locked 3 files' in path.read_text()
    assert capsys.readouterr().out == ''


def test_debug_includes_the_sdk_logger(tmp_path):
    path = tmp_path / 'tool.log'
    setup_logging(debug=True, output=str(path))
    logging.getLogger(SDK_LOGGER).debug('REQUEST: GET /v1/session/who-am-i')
    assert 'REQUEST: GET /v1/session/who-am-i' in path.read_text()


def test_sdk_debug_stays_quiet_without_debug(tmp_path):
    path = tmp_path / 'tool.log'
    setup_logging(debug=True, output=str(path))
    setup_logging(debug=False, output=str(path))  # a second call replaces the first
    logging.getLogger(SDK_LOGGER).debug('REQUEST: GET /v1/x')
    logging.getLogger(__name__).info('once')
    text = path.read_text()
    assert 'REQUEST' not in text
    assert text.count('once') == 1


def test_rotation(tmp_path):
    path = tmp_path / 'tool.log'
    setup_logging(output=str(path), max_bytes=500, backup_count=2)
    log = logging.getLogger(__name__)
    for n in range(50):
        log.info('event number %d with some padding to fill the file', n)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['tool.log', 'tool.log.1', 'tool.log.2']
    assert path.stat().st_size <= 500


def test_unwritable_output_is_a_usage_error(tmp_path):
    with pytest.raises(ToolError) as caught:
        setup_logging(output=str(tmp_path / 'missing-dir' / 'tool.log'))
    assert caught.value.exit_code == errors.USAGE
    assert 'missing-dir/tool.log' in caught.value.message


@pytest.mark.parametrize(
    'message, secret',
    [
        ('    Authorization: Bearer session-v1:Zm9vYmFy_-abc', 'session-v1:Zm9vYmFy_-abc'),
        ("{'Authorization': 'Bearer weird-token-without-prefix'}", 'weird-token-without-prefix'),
        ("{'bearer_token': 'access-v1:QUJDREVGRw==', 'issue': 1}", 'QUJDREVGRw=='),
        ("{'username': 'admin', 'password': 'Tr0ub4dor&3'}", 'Tr0ub4dor&3'),
        ('{"username": "admin", "password": "quo\\"ted"}', 'quo\\"ted'),
        ("{'old_password': 'old-one', 'new_password': 'new-one'}", 'old-one'),
        ("{'old_password': 'old-one', 'new_password': 'new-one'}", 'new-one'),
    ],
)
def test_patterns_are_redacted(tmp_path, message, secret):
    path = tmp_path / 'tool.log'
    setup_logging(debug=True, output=str(path))
    logging.getLogger(SDK_LOGGER).debug(message)
    text = path.read_text()
    assert secret not in text
    assert '<redacted>' in text


@pytest.mark.parametrize(
    'message, expected',
    [
        ("login(username='admin', password='s3cret pass')", "login(username='admin', password='<redacted>')"),
        ('PASSWORD = hunter2', 'PASSWORD = <redacted>'),
        ('POST /login?user=admin&password=hunter2&x=1', 'POST /login?user=admin&password=<redacted>&x=1'),
        ("{'PASSWORD': 'hunter2'}", "{'PASSWORD': '<redacted>'}"),
    ],
)
def test_passwords_are_redacted_where_they_stand(tmp_path, message, expected):
    path = tmp_path / 'tool.log'
    setup_logging(output=str(path))
    logging.getLogger(__name__).info(message)
    assert path.read_text().rstrip('\n').endswith(' - INFO - ' + expected)


def test_registered_token_is_redacted_in_arguments_and_tracebacks(tmp_path):
    path = tmp_path / 'tool.log'
    setup_logging(output=str(path))
    register_secret('plain-token-value-4242424242')
    log = logging.getLogger(__name__)
    log.info('config says %s', {'ACCESS_TOKEN': 'plain-token-value-4242424242'})
    try:
        raise ValueError('bad value plain-token-value-4242424242')
    except ValueError:
        log.exception('failed')
    text = path.read_text()
    assert 'plain-token-value-4242424242' not in text
    assert "{'ACCESS_TOKEN': '<redacted>'}" in text
    assert 'ValueError: bad value <redacted>' in text


def test_a_password_that_is_also_the_user_name_is_hidden_only_as_a_password(sim, tmp_path):
    # admin's password is admin: redacting the value everywhere would print "as <redacted>",
    # giving the password away, and would mangle every path that contains the word.
    config = load_cluster_config(sim.write_config(tmp_path / 'tool.ini'))
    path = tmp_path / 'debug.log'
    setup_logging(debug=True, output=str(path))
    connect(config)
    logging.getLogger(__name__).info('logged in as %s; watching /home/admin/inbox', config.username)
    text = path.read_text()
    assert 'logged in as admin; watching /home/admin/inbox' in text
    assert "'password': '<redacted>'" in text and "'password': 'admin'" not in text


def test_debug_login_never_writes_password_or_token(sim, tmp_path):
    config = load_cluster_config(sim.write_config(tmp_path / 'tool.ini'))  # admin / admin
    path = tmp_path / 'debug.log'
    setup_logging(debug=True, output=str(path))

    client = connect(config)
    first = client.credentials.bearer_token
    sim.control('expire-sessions')  # forces a second login, whose token must be hidden too
    assert who_am_i(client)['privileges']
    second = client.credentials.bearer_token
    logging.getLogger(__name__).debug('an ordinary debug line')

    text = path.read_text()
    # The SDK really logged the login body, the Authorization header and the token replies...
    assert text.count('REQUEST: POST https://') == 2 and '/v1/session/login' in text
    assert 'Authorization: Bearer <redacted>' in text
    assert "'password': '<redacted>'" in text
    assert text.count("{'bearer_token': 'session-v1:<redacted>'}") == 2
    # ...yet neither the password nor any token survived.
    assert "'password': 'admin'" not in text
    for token in (first, second):
        assert token.split(':', 1)[1] not in text
    assert 'an ordinary debug line' in text  # redaction rewrites lines, it does not drop them


def test_debug_access_token_never_written(sim, tmp_path):
    admin = sim.client()
    created = admin.access_tokens.create(Identity({'auth_id': admin.auth.who_am_i()['id']}))
    config = load_cluster_config(
        sim.write_config(tmp_path / 'tool.ini', USERNAME=None, PASSWORD=None, ACCESS_TOKEN=created.bearer_token)
    )
    path = tmp_path / 'debug.log'
    setup_logging(debug=True, output=str(path))
    who_am_i(connect(config))
    text = path.read_text()
    assert 'REQUEST HEADERS' in text
    assert created.bearer_token not in text
    assert created.bearer_token.split(':', 1)[1] not in text


def test_common_arguments():
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    parser.set_defaults(config_file='tool_config.ini')
    assert vars(parser.parse_args([])) == {
        'config_file': 'tool_config.ini',
        'configure': False,
        'debug': False,
        'output': None,
    }
    args = parser.parse_args(['--config-file', 'x.ini', '--configure', '--debug', '--output', 'log.txt'])
    assert (args.config_file, args.configure, args.debug, args.output) == ('x.ini', True, True, 'log.txt')
