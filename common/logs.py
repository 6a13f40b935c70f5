"""Logging setup shared by the tools, with secrets scrubbed from every record.

At DEBUG the Qumulo SDK logs each request's headers and body, which include the
`Authorization: Bearer ...` header and, for a login, the password. Debug logs get attached to
support tickets, so every handler installed here runs a filter that redacts them.
"""

import argparse
import logging
import logging.handlers
import re
import sys
import threading
from typing import List, Optional, Set, TextIO

from common.errors import USAGE, ToolError

REDACTED = '<redacted>'
FORMAT = '%(asctime)s - %(levelname)s - %(message)s'
SDK_LOGGER = 'qumulo.rest_client'  # the SDK pins this one to WARNING at import

_secrets: Set[str] = set()
_secrets_lock = threading.Lock()

# Secrets are recognised by where they stand (a header, a field, an argument), never by their
# value alone: a password such as 'admin' is also a user name and a part of paths, and replacing
# it wherever it appears would mangle ordinary lines and, worse, show a reader which word of the
# line is the password. Tokens the cluster issues are long and random, so those are also replaced
# wherever they appear (register_secret).
_QUOTED = r"""(["'])(?:\\.|(?!\2).)*\2"""  # a quoted value, escaped quotes included
_PATTERNS = [
    (re.compile(r'(Bearer\s+)[^\s\'"]+'), r'\1' + REDACTED),
    (re.compile(r'\b(session-v1|access-v1):[^\s\'"]+'), r'\1:' + REDACTED),
    # "password": "..." in JSON or 'password': '...' in a logged dict, including old_/new_password.
    (re.compile(r"""(["'][A-Za-z_]*password["']\s*:\s*)""" + _QUOTED, re.I), r'\1\2' + REDACTED + r'\2'),
    # password='...' (a keyword argument or a repr), PASSWORD = ... (an INI line), password=... (a query).
    (re.compile(r'(\b[A-Za-z_]*password\s*=\s*)' + _QUOTED, re.I), r'\1\2' + REDACTED + r'\2'),
    (re.compile(r"""(\b[A-Za-z_]*password\s*=[ \t]*)(?!["'<\s])[^\s,;&)]+""", re.I), r'\1' + REDACTED),
]


def register_secret(value: Optional[str]) -> None:
    """Redact this value wherever it appears from now on: for tokens issued by the cluster, long and
    random, never a part of ordinary text. Passwords are redacted by where they stand (_PATTERNS)."""
    if value:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
    for secret in known:
        text = text.replace(secret, REDACTED)
    lowered = text.lower()
    if 'bearer' in lowered or 'v1:' in lowered or 'password' in lowered:  # each pattern needs one
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with secrets replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _make_handler(output: Optional[str], max_bytes: int, backup_count: int, console: TextIO) -> logging.Handler:
    if output is None:
        return logging.StreamHandler(console)
    try:
        if max_bytes > 0:
            return logging.handlers.RotatingFileHandler(
                output, maxBytes=max_bytes, backupCount=backup_count, encoding='utf-8'
            )
        return logging.FileHandler(output, encoding='utf-8')
    except OSError as exc:
        raise ToolError(f'cannot write log file {output}: {exc.strerror}', USAGE) from None


# Handlers installed by setup_logging, so that a second call replaces rather than adds.
_installed: List[logging.Handler] = []


def setup_logging(
    debug: bool = False,
    output: Optional[str] = None,
    max_bytes: int = 0,
    backup_count: int = 5,
    console: Optional[TextIO] = None,
) -> None:
    """Send every log record to stdout (or `console`: stderr where stdout carries a report a
    script reads), or to the file `output` (rotated when max_bytes > 0).

    It configures the root logger's handler and level; each module logs through its own
    `logging.getLogger(__name__)`, whose records reach the root. `debug` lowers the level to DEBUG
    for everything, the SDK's request logging included. Safe to call again: a second call
    replaces the handler of the first.
    """
    root = logging.getLogger()
    for old in _installed:
        root.removeHandler(old)
        old.close()
    _installed.clear()

    handler = _make_handler(output, max_bytes, backup_count, console or sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    _installed.append(handler)

    level = logging.DEBUG if debug else logging.INFO
    root.setLevel(level)
    logging.getLogger(SDK_LOGGER).setLevel(logging.DEBUG if debug else logging.WARNING)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --config-file, --configure, --debug and --output; defaults are left to the caller."""
    parser.add_argument(
        '--config-file',
        metavar='FILE',
        help='cluster settings file (INI with API_HOST, API_PORT, USERNAME, PASSWORD)',
    )
    parser.add_argument(
        '--configure',
        action='store_true',
        help='prompt for the cluster settings, save them to the config file and exit',
    )
    parser.add_argument(
        '--debug', action='store_true', help='log everything, including REST requests (secrets redacted)'
    )
    parser.add_argument('--output', metavar='FILE', help='write the log to FILE instead of stdout')
