"""Turn failures into one-line messages and distinct exit codes.

The tools run unattended (cron, systemd, pipelines), so a caller must be able to tell from the exit
status alone whether to fix the config, the network, the certificate, the credentials or the
privileges. Everything here maps an exception to one of those answers; nothing prints a traceback
unless --debug asked for it.
"""

import argparse
import contextlib
import errno
import http.client
import json
import logging
import os
import re
import socket
import ssl
import sys
from typing import Callable, Iterator, NoReturn, Optional

from qumulo.lib.request import APIException, RequestError

log = logging.getLogger(__name__)

# Exit codes. USAGE is 2 because argparse already exits with 2 on a bad command line.
OK = 0
FAILURE = 1  # anything not covered below
USAGE = 2  # bad command-line arguments
CONFIG = 3  # config file missing, unreadable or invalid
UNREACHABLE = 4  # DNS failure, refused port, timeout, no route
TLS = 5  # TLS handshake or certificate verification failed
AUTH = 6  # bad credentials, rejected or expired token
PRIVILEGE = 7  # 403: the user lacks a privilege (or the file's ACL refuses)
NOT_FOUND = 8  # the file or path does not exist on the cluster
BAD_REPLY = 9  # the server's reply could not be understood
SERVICE_DOWN = 10  # the pytarchive service is not running, or its socket cannot be reached
SOME_NOT_CLOSED = 11  # the lock manager closed some of the chosen SMB handles, not all (gone already, or refused)
NOT_CONFIRMED = 12  # the lock manager's close was not confirmed at its prompt: nothing was closed
NOTHING_MATCHED = 13  # no open SMB handle matched what the lock manager was asked to list or close
INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class BadReply(Exception):
    """The cluster answered, but not with something a tool can use: a reply of the wrong shape,
    one too large or too slow to be a real answer, a paging loop."""


class ToolError(Exception):
    """A failure the user can act on: `message` is shown as is, `exit_code` is the status.

    Each layer subclasses it with its own exit code as a class attribute, so that the place that
    raises decides the status and run_main() alone turns it into the user's line."""

    exit_code = FAILURE

    def __init__(self, message: str, exit_code: Optional[int] = None):
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


# What translate() understands; tools catch exactly these around cluster calls.
TRANSLATABLE = (
    OSError,  # includes ssl.SSLError, socket errors, TimeoutError, ConnectionError
    http.client.HTTPException,
    RequestError,
    APIException,
    json.JSONDecodeError,
    BadReply,
)

_NOT_FOUND_CLASSES = frozenset({'fs_no_such_entry_error', 'fs_no_such_path_error'})
_PRIVILEGE_NAME = re.compile(r'\bPRIVILEGE_[A-Z0-9_]+\b')


def one_line(text: object) -> str:
    """Collapse whitespace so multi-line server descriptions stay on one line."""
    return ' '.join(str(text).split())


def _where(host: Optional[str], port: Optional[int]) -> str:
    if not host:
        return 'the cluster'
    if ':' in host:  # IPv6 literal: brackets keep the port readable
        host = f'[{host}]'
    return f'the cluster at {host}:{port}' if port else f'the cluster at {host}'


def _network_reason(exc: OSError) -> Optional[str]:
    """The short reason for a failure to reach the host, or None if exc is not one."""
    if isinstance(exc, socket.gaierror):
        return f'host name not found ({exc.strerror})'
    if isinstance(exc, ConnectionRefusedError):
        return 'connection refused'
    if isinstance(exc, TimeoutError):  # socket.timeout is an alias since 3.10
        return 'timed out'
    if exc.errno == errno.ENETUNREACH:
        return 'network unreachable'
    if exc.errno == errno.EHOSTUNREACH:
        return 'no route to host'
    if isinstance(exc, ConnectionResetError):
        return 'connection reset'
    if isinstance(exc, ConnectionAbortedError):
        return 'connection aborted'
    return None


def _translate_request_error(exc: RequestError, where: str) -> ToolError:
    description = one_line(exc.description)
    status = exc.status_code
    if status == 401:
        return ToolError(f'{where} rejected the credentials: {description}', AUTH)
    if status == 403:
        named = _PRIVILEGE_NAME.findall(description)
        if named:
            return ToolError(
                f'permission denied by {where}: missing privilege {", ".join(named)} ({description})',
                PRIVILEGE,
            )
        return ToolError(f'permission denied by {where}: {description}', PRIVILEGE)
    if status == 404 and exc.error_class in _NOT_FOUND_CLASSES:
        return ToolError(f'not found: {description}', NOT_FOUND)
    return ToolError(f'{where} answered {status} {exc.error_class}: {description}', FAILURE)


def translate(exc: BaseException, host: Optional[str] = None, port: Optional[int] = None) -> ToolError:
    """Map an exception from the SDK or the network to a one-line ToolError."""
    if isinstance(exc, ToolError):
        return exc
    where = _where(host, port)
    if isinstance(exc, RequestError):
        return _translate_request_error(exc, where)
    # SSL errors are OSErrors too, so they must be recognised before the network checks. A TLS
    # EOF is the peer hanging up (a restarting cluster, a proxy), not a TLS problem.
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return ToolError(f'cannot reach {where}: the connection was closed (TLS EOF)', UNREACHABLE)
    if isinstance(exc, ssl.SSLError):
        # Raised ones carry verify_message (verification) or reason (handshake); built ones may not.
        detail = getattr(exc, 'verify_message', None) or getattr(exc, 'reason', None) or one_line(exc)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ToolError(f'cannot verify the TLS certificate of {where}: {detail}', TLS)
        return ToolError(f'TLS handshake with {where} failed: {detail}', TLS)
    if isinstance(exc, BadReply):
        return ToolError(f'bad reply from {where}: {one_line(exc)}', BAD_REPLY)
    # RemoteDisconnected is both a ConnectionResetError and a BadStatusLine: the server hung up
    # instead of answering, which is a bad reply rather than an unreachable host.
    if isinstance(exc, (http.client.HTTPException, APIException, json.JSONDecodeError)):
        return ToolError(
            f'bad reply from {where}: {type(exc).__name__}: {one_line(exc) or "no details"}',
            BAD_REPLY,
        )
    if isinstance(exc, OSError):
        reason = _network_reason(exc)
        if reason:
            return ToolError(f'cannot reach {where}: {reason}', UNREACHABLE)
        return ToolError(one_line(exc), FAILURE)
    return ToolError(f'unexpected {type(exc).__name__}: {one_line(exc)}', FAILURE)


def is_transient(exc: BaseException) -> bool:
    """Whether the same call may succeed later without anyone changing anything: the network,
    a restarting cluster, a busy one (5xx, 429), a garbled reply. A long-running tool retries
    these; a rejected certificate, credentials or privilege it reports."""
    if isinstance(exc, RequestError):
        return exc.status_code >= 500 or exc.status_code == 429
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False
    return isinstance(exc, TRANSLATABLE)


def describe(exc: BaseException) -> str:
    """One line for a log: the SDK's own text for a RequestError carries a backtrace."""
    return translate(exc).message


@contextlib.contextmanager
def reading_reply(what: str) -> Iterator[None]:
    """Inside the block, a reply of the wrong shape (a missing key, a list for an object, text for
    a number) is a BadReply naming `what`, not a KeyError or TypeError from deep in the tool."""
    try:
        yield
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise BadReply(f'{what} is not shaped as expected ({type(exc).__name__}: {one_line(exc)})') from exc


@contextlib.contextmanager
def translated(host: Optional[str] = None, port: Optional[int] = None) -> Iterator[None]:
    """Re-raise SDK and network exceptions inside the block as ToolError."""
    try:
        yield
    except TRANSLATABLE as exc:
        raise translate(exc, host, port) from exc


def error_line(message: str, prog: str) -> str:
    """The one format of a failure, the same as argparse's for a bad command line: `prog: error: message`."""
    return f'{prog}: error: {one_line(message)}'


def _report(message: str, prog: str) -> None:
    print(error_line(message, prog), file=sys.stderr)


def _silence_stdout() -> None:
    # The reader went away (`tool | head`): point stdout at /dev/null so the interpreter's final
    # flush does not raise BrokenPipeError again while exiting.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run_main(main_fn: Callable[[], Optional[int]], prog: str) -> int:
    """Run an entry point and return its exit status; errors become one line on stderr.

    Usage: `sys.exit(run_main(main, 'tool'))`. SystemExit (argparse, sys.exit) passes through untouched.
    """
    try:
        status = main_fn()
        return OK if status is None else int(status)
    except ToolError as exc:  # ConfigError is a ToolError
        _report(exc.message, prog)
        return exc.exit_code
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return OK
    except TRANSLATABLE as exc:
        # A cluster or network failure the tool did not catch itself: still worth a precise code.
        log.debug('uncaught exception', exc_info=True)
        error = translate(exc)
        _report(error.message, prog)
        return error.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        log.debug('uncaught exception', exc_info=True)
        _report(f'unexpected {type(exc).__name__}: {exc} (run with --debug for details)', prog)
        return FAILURE


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad command line gets one line (and the --help hint), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, error_line(f'{message} (see --help)', self.prog) + '\n')
