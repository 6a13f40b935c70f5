"""The command line: `--list` and `--close` for scripts and cron; with neither, the window.

Failures are raised (lockmanager.errors, common.errors) and printed by common.errors.run_main as
one line `qumulo_lock_manager.py: error: ...`; the only lines printed here are those of handles a
close could not close, in that same format, because the others still close.
"""

import argparse
import logging
import os
import sys
from typing import List, Optional, Sequence

from common.auth import require_privileges
from common.config import ClusterConfig, configure_interactively, find_config_file, load_cluster_config
from common.errors import (
    AUTH,
    BAD_REPLY,
    CONFIG,
    FAILURE,
    INTERRUPTED,
    NOT_CONFIRMED,
    NOT_FOUND,
    NOTHING_MATCHED,
    OK,
    PRIVILEGE,
    SOME_NOT_CLOSED,
    TLS,
    UNREACHABLE,
    USAGE,
    ArgumentParser,
    ToolError,
    error_line,
)
from common.logs import add_common_arguments, setup_logging
from lockmanager.closing import ClosePlan, summary
from lockmanager.cluster import CLOSE_PRIVILEGES, LIST_PRIVILEGES, LockCluster, Snapshot, connect_once
from lockmanager.errors import NoTerminal, NotConfirmed, NothingMatched, NoWindow
from lockmanager.export import table_lines, write_csv, write_json, write_outcomes_json
from lockmanager.model import HandleRow, Selector, plural, sort_rows

PROG = 'qumulo_lock_manager.py'
CONFIG_FILENAME = 'qumulo_lock_manager_config.ini'
CONFIG_ENV = 'QUMULO_LOCK_MANAGER_CONFIG'

# Every status the tool returns, by common.errors' constants, so that the help cannot drift from them.
_EXIT_MEANINGS = (
    (OK, 'listed, or every chosen handle closed'),
    (FAILURE, 'any other failure (e.g. a Python without Tk for the window)'),
    (USAGE, 'bad command line; --close without --yes and no terminal to ask on; no display for the window'),
    (CONFIG, 'config file missing, unreadable or invalid'),
    (UNREACHABLE, 'the cluster cannot be reached'),
    (TLS, 'TLS handshake or certificate verification failed'),
    (AUTH, 'bad credentials, or a rejected or expired access token'),
    (PRIVILEGE, 'a privilege is missing (the line names it)'),
    (NOT_FOUND, 'not found on the cluster'),
    (BAD_REPLY, "the cluster's reply could not be understood"),
    (SOME_NOT_CLOSED, 'some handles were not closed (gone already, or refused); the others were'),
    (NOT_CONFIRMED, 'the close was not confirmed at the prompt: nothing was closed'),
    (NOTHING_MATCHED, 'no open handle matched'),
    (INTERRUPTED, 'interrupted (Ctrl-C)'),
)
EXIT_CODES = 'exit codes:\n' + ''.join(f'  {code:<4} {meaning}\n' for code, meaning in _EXIT_MEANINGS)

log = logging.getLogger(__name__)


def _file_id(text: str) -> str:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f'a file id is a number, not {text!r}')
    return str(int(text))


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1
    if not 1 <= seconds <= 86400:
        raise argparse.ArgumentTypeError(f'expected seconds from 1 to 86400, not {text!r}')
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description='List the SMB file handles open on a Qumulo cluster and force-close the ones you\n'
        'pick: in a window, or with --list / --close from scripts.',
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--list', action='store_true', help='print the open handles and exit')
    mode.add_argument(
        '--close',
        action='store_true',
        help='close the handles chosen by --path or --file-id (narrowed by --user, --client)',
    )
    pick = parser.add_argument_group('choosing handles (with --list or --close)')
    pick.add_argument('--path', metavar='TEXT', help='handles of files whose path contains TEXT (any case)')
    pick.add_argument('--file-id', metavar='N', type=_file_id, help='handles of the file with this id')
    pick.add_argument('--user', metavar='NAME', help='handles opened by this user (name or auth id)')
    pick.add_argument('--client', metavar='ADDRESS', help='handles held from this client address')
    output = parser.add_argument_group('output').add_mutually_exclusive_group()
    output.add_argument('--json', action='store_true', help='print JSON (with --list or --close)')
    output.add_argument('--csv', action='store_true', help='print CSV (with --list)')
    pick.add_argument(
        '--all',
        action='store_true',
        help='with --close: every open handle on the cluster (nothing else chooses them all)',
    )
    parser.add_argument('--yes', action='store_true', help='with --close: do not ask for confirmation')
    parser.add_argument(
        '--auto-refresh',
        metavar='SECONDS',
        type=_seconds,
        help='the window lists again every SECONDS (it can be changed in the window)',
    )
    add_common_arguments(parser)
    for action in parser._actions:  # stdout carries the report here, so the log goes elsewhere
        if '--output' in action.option_strings:
            action.help = 'write the log to FILE instead of stderr'
    return parser


def _check_combinations(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    criteria = [
        (flag, value)
        for flag, value in (
            ('--path', args.path),
            ('--file-id', args.file_id),
            ('--user', args.user),
            ('--client', args.client),
        )
        if value is not None
    ]
    chosen = [flag for flag, _ in criteria] + [
        flag for flag, on in (('--all', args.all), ('--json', args.json), ('--csv', args.csv)) if on
    ]
    if not (args.list or args.close) and chosen and not args.configure:
        parser.error(f'{chosen[0]} goes with --list or --close')
    # An empty pattern is contained in every path: taken literally, '--close --path ""' would close
    # every handle on the cluster. Closing them all must be said in so many words (--all).
    for flag, value in criteria:
        if not value.strip():
            parser.error(
                f'{flag} is empty: it would match every handle; give a pattern, or --close --all to close every handle'
            )
    if args.all and not args.close:
        parser.error('--all goes with --close (--list without a pattern lists every handle)')
    if args.all and criteria:
        parser.error(f'--all closes every handle: it does not go with {criteria[0][0]}')
    if args.close and not args.all and args.path is None and args.file_id is None:
        parser.error('--close needs --path TEXT or --file-id N (--user and --client narrow them), or --all')
    if args.close and args.csv:
        parser.error('--csv goes with --list (--close can report --json)')
    if args.yes and not args.close:
        parser.error('--yes goes with --close')
    if args.auto_refresh and (args.list or args.close):
        parser.error('--auto-refresh is for the window, not --list or --close')


def _display_missing() -> bool:
    # Tk on macOS and Windows draws without X; elsewhere it needs an X display.
    return sys.platform not in ('darwin', 'win32') and not os.environ.get('DISPLAY')


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_combinations(parser, args)
    # stdout carries the report (a table, CSV or JSON a script reads): log lines go to stderr.
    setup_logging(args.debug, args.output, console=sys.stderr)

    if args.configure:
        configure_interactively(find_config_file(args.config_file, CONFIG_ENV, CONFIG_FILENAME, must_exist=False))
        return OK
    if not (args.list or args.close) and _display_missing():
        raise NoWindow(
            'the lock manager window needs a display ($DISPLAY is not set); '
            'use --list or --close here, or run it in a desktop session'
        )
    config = load_cluster_config(find_config_file(args.config_file, CONFIG_ENV, CONFIG_FILENAME))
    if not (args.list or args.close):
        return _open_window(config, args.auto_refresh or 0)

    client = connect_once(config)
    cluster = LockCluster(client)
    selector = Selector(args.path, args.file_id, args.user, args.client)
    if args.list:
        return list_handles(cluster, selector, args)
    # Both checked before anything is listed, so a user who may not close learns it at once.
    require_privileges(client, LIST_PRIVILEGES + CLOSE_PRIVILEGES)
    return close_handles(cluster, selector, args)


def _open_window(config: ClusterConfig, auto_refresh_s: float) -> int:
    try:
        from lockmanager.gui import run_window
    except ImportError as exc:  # a Python built without Tk
        raise ToolError(
            f'the window needs Tk ({exc}; e.g. apt-get install python3-tk); --list and --close work without it'
        ) from None
    return run_window(config, auto_refresh_s)


def _picked(snapshot: Snapshot, selector: Selector) -> List[HandleRow]:
    # What the listing shows in a degraded way and why (auth ids without PRIVILEGE_IDENTITY_READ...):
    # a warning on stderr, since the listing still goes on.
    for note in snapshot.notes:
        log.warning(note)
    return sort_rows(selector.pick(snapshot.rows), 'path')


def _nothing_matched(selector: Selector) -> NothingMatched:
    return NothingMatched(f'no open SMB file handle matched ({selector.describe()})')


def list_handles(cluster: LockCluster, selector: Selector, args: argparse.Namespace) -> int:
    rows = _picked(cluster.fetch(), selector)
    if args.json:
        write_json(rows, sys.stdout)
    elif args.csv:
        write_csv(rows, sys.stdout)
    elif rows:
        print('\n'.join(table_lines(rows)))
    if not rows:  # after the (empty) JSON or CSV, so that a script still reads a valid document
        raise _nothing_matched(selector)
    return OK


def _confirmed(plan: ClosePlan) -> bool:
    if not sys.stdin.isatty():
        raise NoTerminal(
            f'not closing {plural(len(plan), "handle")} without confirmation: there is no terminal '
            f'to ask on; add --yes to close them'
        )
    # The question goes to stderr, so that stdout stays the report even at a terminal.
    print(plan.question(), file=sys.stderr)
    sys.stderr.write(f'{plan.title} [y/N] ')
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ('y', 'yes')


def close_handles(cluster: LockCluster, selector: Selector, args: argparse.Namespace) -> int:
    rows = _picked(cluster.fetch(), selector)
    if not rows:
        raise _nothing_matched(selector)
    plan = ClosePlan.of(rows, f'the handles matching {selector.describe()}')
    if not args.yes and not _confirmed(plan):
        raise NotConfirmed('nothing closed: the close was not confirmed')
    outcomes = cluster.close(plan.rows)
    if args.json:
        write_outcomes_json(outcomes, sys.stdout)
    for outcome in outcomes:
        if not outcome.closed:
            print(error_line(outcome.describe(), PROG), file=sys.stderr)
        elif not args.json:
            print(outcome.describe())
    print(summary(outcomes), file=sys.stderr if args.json else sys.stdout)
    return OK if all(outcome.closed for outcome in outcomes) else SOME_NOT_CLOSED
