"""common.errors: what the user reads, and the exit status, for each kind of failure."""

import errno
import http.client
import json
import socket
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from qumulo.lib.request import APIException, RequestError

from common import errors
from common.config import ConfigError
from common.errors import ToolError, translate

REPO = Path(__file__).resolve().parents[2]


def request_error(status, error_class, description):
    return RequestError(status, 'Reason', {'error_class': error_class, 'description': description, 'stack': ['a', 'b']})


@pytest.mark.parametrize(
    'exc, code, text',
    [
        (
            ConnectionRefusedError(errno.ECONNREFUSED, 'Connection refused'),
            errors.UNREACHABLE,
            'cannot reach the cluster at 10.1.2.3:8000: connection refused',
        ),
        (
            socket.gaierror(socket.EAI_NONAME, 'Name or service not known'),
            errors.UNREACHABLE,
            'cannot reach the cluster at 10.1.2.3:8000: host name not found (Name or service not known)',
        ),
        (TimeoutError('timed out'), errors.UNREACHABLE, 'cannot reach the cluster at 10.1.2.3:8000: timed out'),
        (socket.timeout('timed out'), errors.UNREACHABLE, 'timed out'),
        (OSError(errno.ENETUNREACH, 'Network is unreachable'), errors.UNREACHABLE, 'network unreachable'),
        (OSError(errno.EHOSTUNREACH, 'No route to host'), errors.UNREACHABLE, 'no route to host'),
        (
            ssl.SSLCertVerificationError(1, 'certificate verify failed'),
            errors.TLS,
            'cannot verify the TLS certificate of the cluster at 10.1.2.3:8000',
        ),
        (ssl.SSLError(1, 'wrong version number'), errors.TLS, 'TLS handshake with the cluster at 10.1.2.3:8000 failed'),
        (
            request_error(401, 'unauthorized_error', 'Invalid username or password'),
            errors.AUTH,
            'the cluster at 10.1.2.3:8000 rejected the credentials: Invalid username or password',
        ),
        (RequestError(401, 'Unauthorized', None), errors.AUTH, 'Need to log in first'),
        (
            request_error(403, 'privilege_denied_error', 'User lacks the privilege PRIVILEGE_FS_FILE_LOCK_WRITE'),
            errors.PRIVILEGE,
            'missing privilege PRIVILEGE_FS_FILE_LOCK_WRITE',
        ),
        (
            request_error(403, 'fs_access_denied_error', 'Access denied'),
            errors.PRIVILEGE,
            'permission denied by the cluster at 10.1.2.3:8000: Access denied',
        ),
        (
            request_error(404, 'fs_no_such_entry_error', '/a/b does not exist'),
            errors.NOT_FOUND,
            'not found: /a/b does not exist',
        ),
        (request_error(404, 'fs_no_such_path_error', 'no such path'), errors.NOT_FOUND, 'not found'),
        (
            request_error(404, 'http_not_found_error', 'no such endpoint'),
            errors.FAILURE,
            'answered 404 http_not_found_error: no such endpoint',
        ),
        (request_error(503, 'unavailable', 'try\nlater'), errors.FAILURE, 'answered 503 unavailable: try later'),
        (APIException('Error loading data: Expecting value'), errors.BAD_REPLY, 'bad reply from the cluster at'),
        (json.JSONDecodeError('Expecting value', 'x', 0), errors.BAD_REPLY, 'JSONDecodeError'),
        (http.client.RemoteDisconnected('Remote end closed connection'), errors.BAD_REPLY, 'RemoteDisconnected'),
        (http.client.BadStatusLine('garbage'), errors.BAD_REPLY, 'BadStatusLine'),
        (
            errors.BadReply('a reply larger than 64 MiB'),
            errors.BAD_REPLY,
            'bad reply from the cluster at 10.1.2.3:8000: a reply larger than 64 MiB',
        ),
        (
            ssl.SSLEOFError(8, 'EOF occurred in violation of protocol'),
            errors.UNREACHABLE,
            'cannot reach the cluster at 10.1.2.3:8000: the connection was closed (TLS EOF)',
        ),
    ],
)
def test_translate(exc, code, text):
    error = translate(exc, '10.1.2.3', 8000)
    assert error.exit_code == code
    assert text in error.message
    assert '\n' not in error.message


def test_translate_real_refused_connection():
    with socket.socket() as probe:
        probe.bind(('127.0.0.2', 0))
        port = probe.getsockname()[1]  # bound but not listening: connecting is refused
        with pytest.raises(OSError) as caught:
            socket.create_connection(('127.0.0.2', port), timeout=5)
    error = translate(caught.value, '127.0.0.2', port)
    assert (error.exit_code, error.message) == (
        errors.UNREACHABLE,
        f'cannot reach the cluster at 127.0.0.2:{port}: connection refused',
    )


def test_translate_names_ipv6_hosts_with_brackets():
    assert '[::1]:8000' in translate(ConnectionRefusedError(), '::1', 8000).message


# The README's exit-code table: one meaning per code, the same for every tool.
EXIT_CODES = {
    'OK': 0,
    'FAILURE': 1,
    'USAGE': 2,
    'CONFIG': 3,
    'UNREACHABLE': 4,
    'TLS': 5,
    'AUTH': 6,
    'PRIVILEGE': 7,
    'NOT_FOUND': 8,
    'BAD_REPLY': 9,
    'SERVICE_DOWN': 10,
    'SOME_NOT_CLOSED': 11,
    'NOT_CONFIRMED': 12,
    'NOTHING_MATCHED': 13,
    'INTERRUPTED': 130,
}


def test_exit_codes_are_the_table_and_distinct():
    constants = {name: value for name, value in vars(errors).items() if name.isupper() and type(value) is int}
    assert constants == EXIT_CODES  # a new code goes into the table here and in the README
    assert len(set(constants.values())) == len(constants), 'two meanings share one exit code'


def test_an_error_class_carries_its_exit_code():
    class ServiceDown(ToolError):
        exit_code = errors.SERVICE_DOWN

    assert ServiceDown('the service is not running').exit_code == errors.SERVICE_DOWN
    assert ToolError('anything else').exit_code == errors.FAILURE
    assert ToolError('named where raised', errors.NOT_FOUND).exit_code == errors.NOT_FOUND
    assert ServiceDown('overridden', errors.FAILURE).exit_code == errors.FAILURE
    assert ConfigError('x.ini: API_HOST is missing').exit_code == errors.CONFIG
    assert ServiceDown.exit_code == errors.SERVICE_DOWN and ConfigError.exit_code == errors.CONFIG


def test_error_line_is_the_argparse_format():
    assert errors.error_line('cannot reach\nthe cluster', 'tool') == 'tool: error: cannot reach the cluster'


def test_translated_context_manager_raises_tool_error():
    with pytest.raises(ToolError) as caught:
        with errors.translated('h', 1):
            raise ConnectionRefusedError()
    assert caught.value.exit_code == errors.UNREACHABLE
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


# ---------------------------------------------------------------------------------------------
# run_main, as a real process: what lands on stderr and the exit status


def run_tool(body: str, pipe_to_head: bool = False) -> subprocess.CompletedProcess:
    script = 'import sys\nfrom common.errors import *\n' + textwrap.dedent(body)
    command = [sys.executable, '-c', script]
    if pipe_to_head:
        writer = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        head = subprocess.run(['head', '-n', '1'], stdin=writer.stdout, capture_output=True, text=True)
        writer.stdout.close()
        stderr = writer.stderr.read().decode()
        writer.wait(timeout=20)
        return subprocess.CompletedProcess(command, writer.returncode, head.stdout, stderr)
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=20)


def test_tool_error_is_one_line_on_stderr():
    result = run_tool(
        """
        def main():
            raise ToolError('cannot reach the cluster at 10.1.2.3:8000: connection refused', UNREACHABLE)
        sys.exit(run_main(main, 'tool'))
        """
    )
    assert result.returncode == 4
    assert result.stderr == 'tool: error: cannot reach the cluster at 10.1.2.3:8000: connection refused\n'
    assert result.stdout == ''


def test_with_the_program_name_the_line_is_prog_error_message():
    result = run_tool(
        """
        class ServiceDown(ToolError):
            exit_code = SERVICE_DOWN
        def main():
            raise ServiceDown('the pytarchive service is not running (no socket at /run/pytarchive.sock)')
        sys.exit(run_main(main, 'pytarchive'))
        """
    )
    assert (result.returncode, result.stdout) == (errors.SERVICE_DOWN, '')
    assert (
        result.stderr
        == 'pytarchive: error: the pytarchive service is not running (no socket at /run/pytarchive.sock)\n'
    )


def test_a_config_error_is_exit_3_in_the_same_line():
    result = run_tool(
        """
        from common.config import load_cluster_config
        sys.exit(run_main(lambda: load_cluster_config('/nonexistent/tool.ini'), 'tool'))
        """
    )
    assert (result.returncode, result.stderr) == (3, 'tool: error: /nonexistent/tool.ini: config file not found\n')


def test_a_bad_command_line_is_the_same_line_and_exit_2():
    result = run_tool(
        """
        parser = ArgumentParser(prog='tool')
        parser.add_argument('--count', type=int)
        sys.exit(run_main(lambda: parser.parse_args(['--count', 'many']), 'tool'))
        """
    )
    assert (result.returncode, result.stdout) == (errors.USAGE, '')
    assert result.stderr == "tool: error: argument --count: invalid int value: 'many' (see --help)\n"
    unknown = run_tool("sys.exit(run_main(lambda: ArgumentParser(prog='tool').parse_args(['--bogus']), 'tool'))")
    assert (unknown.returncode, unknown.stderr) == (2, 'tool: error: unrecognized arguments: --bogus (see --help)\n')


def test_multi_line_message_is_flattened():
    result = run_tool("sys.exit(run_main(lambda: (_ for _ in ()).throw(ToolError('a\\nb', 7)), 'tool'))")
    assert (result.returncode, result.stderr) == (7, 'tool: error: a b\n')


def test_return_value_is_the_exit_status():
    assert run_tool("sys.exit(run_main(lambda: 3, 'tool'))").returncode == 3
    assert run_tool("sys.exit(run_main(lambda: None, 'tool'))").returncode == 0


def test_unexpected_exception_is_one_line_without_traceback():
    result = run_tool(
        """
        def main():
            return {}['missing']
        sys.exit(run_main(main, 'tool'))
        """
    )
    assert result.returncode == 1
    assert result.stderr == "tool: error: unexpected KeyError: 'missing' (run with --debug for details)\n"


def test_uncaught_sdk_error_still_gets_its_exit_code():
    result = run_tool(
        """
        from qumulo.lib.request import RequestError
        def main():
            raise RequestError(404, 'Not Found', {'error_class': 'fs_no_such_entry_error',
                                                  'description': '/x does not exist'})
        sys.exit(run_main(main, 'tool'))
        """
    )
    assert (result.returncode, result.stderr) == (8, 'tool: error: not found: /x does not exist\n')


def test_traceback_goes_to_the_debug_log():
    result = run_tool(
        """
        import logging
        logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
        def main():
            raise RuntimeError('boom')
        sys.exit(run_main(main, 'tool'))
        """
    )
    assert result.returncode == 1
    assert 'Traceback' in result.stdout and 'RuntimeError: boom' in result.stdout
    assert result.stderr == 'tool: error: unexpected RuntimeError: boom (run with --debug for details)\n'


def test_ctrl_c_exits_130_quietly():
    result = run_tool(
        """
        def main():
            raise KeyboardInterrupt
        sys.exit(run_main(main, 'tool'))
        """
    )
    assert (result.returncode, result.stderr) == (130, '')


def test_closed_pipe_exits_0_quietly():
    result = run_tool(
        """
        def main():
            for n in range(1000000):
                print('line', n)
        sys.exit(run_main(main, 'tool'))
        """,
        pipe_to_head=True,
    )
    assert result.stdout == 'line 0\n'
    assert (result.returncode, result.stderr) == (0, '')


@pytest.mark.parametrize(
    'exc, transient',
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, 'refused'), True),
        (ConnectionResetError(errno.ECONNRESET, 'reset'), True),
        (http.client.RemoteDisconnected('closed'), True),
        (http.client.IncompleteRead(b'x', 10), True),
        (socket.gaierror(socket.EAI_AGAIN, 'Temporary failure in name resolution'), True),
        (TimeoutError('timed out'), True),
        (ssl.SSLEOFError(8, 'EOF occurred in violation of protocol'), True),
        (errors.BadReply('garbled'), True),
        (request_error(503, 'unavailable', 'restarting'), True),
        (request_error(429, 'too_many_requests', 'slow down'), True),
        (ssl.SSLCertVerificationError(1, 'certificate verify failed'), False),
        (request_error(401, 'unauthorized_error', 'no'), False),
        (request_error(403, 'privilege_denied_error', 'no'), False),
        (request_error(404, 'fs_no_such_entry_error', 'gone'), False),
        (KeyError('id'), False),
    ],
)
def test_is_transient(exc, transient):
    assert errors.is_transient(exc) is transient


def test_describe_is_one_line_without_the_sdks_backtrace():
    exc = request_error(503, 'unavailable', 'try later')
    assert '\n' in str(exc) and 'Backtrace' in str(exc)  # the SDK's own text
    assert errors.describe(exc) == 'the cluster answered 503 unavailable: try later'


@pytest.mark.parametrize('reply', [{'files': 'x'}, [1, 2], None, {'files': [{'id': []}]}])
def test_reading_reply_turns_a_wrong_shape_into_a_bad_reply(reply):
    with pytest.raises(errors.BadReply) as caught:
        with errors.reading_reply('a directory listing'):
            {entry['id']: int(entry['id']) for entry in reply['files'] if entry['type']}
    assert str(caught.value).startswith('a directory listing is not shaped as expected (')
    assert translate(caught.value).exit_code == errors.BAD_REPLY
