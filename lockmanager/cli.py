"""The command line: `--list` and `--close` for scripts and cron; with neither, the window.

Failures are raised (lockmanager.errors, common.errors) and printed by common.errors.run_main as
one line `qumulo_lock_manager.py: error: ...`; the only lines printed here are those of handles a
close could not close, in that same format, because the others still close.
"""

import argparse
import logging
import os
import sys
from typing import Any, Callable, List, Optional, Sequence, Union

from common.auth import require_privileges
from common.config import (
    ClusterConfig,
    ConfigError,
    configure_interactively,
    find_config_file,
    load_cluster_config,
)
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
from lockmanager.closing import ClosePlan, CloseOutcome, SessionPlan, summary
from lockmanager.cluster import (
    CLOSE_PRIVILEGES,
    LIST_PRIVILEGES,
    SESSION_CLOSE_PRIVILEGES,
    SESSION_LIST_PRIVILEGES,
    LockCluster,
    Snapshot,
    connect_once,
)
from lockmanager.errors import NoTerminal, NotConfirmed, NothingMatched, NoWindow
from lockmanager.export import table_lines, write_csv, write_json, write_outcomes_json
from lockmanager.model import (
    COLUMNS,
    SESSION_COLUMNS,
    Column,
    HandleRow,
    Selector,
    SessionRow,
    plural,
    sort_rows,
    sort_sessions,
)

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
    (SOME_NOT_CLOSED, 'some handles or sessions were not closed (gone already, or refused); the others were'),
    (NOT_CONFIRMED, 'the close was not confirmed at the prompt: nothing was closed'),
    (NOTHING_MATCHED, 'no open handle (or session) matched'),
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
    mode.add_argument('--sessions', action='store_true', help='print the SMB sessions and exit')
    mode.add_argument(
        '--close-session',
        action='store_true',
        help='close the SMB sessions (and every file they hold) chosen by --user and/or --client',
    )
    pick = parser.add_argument_group('choosing handles (with --list or --close)')
    pick.add_argument('--path', metavar='TEXT', help='handles of files whose path contains TEXT (any case)')
    pick.add_argument('--file-id', metavar='N', type=_file_id, help='handles of the file with this id')
    pick.add_argument('--user', metavar='NAME', help='handles opened by this user (name or auth id)')
    pick.add_argument('--client', metavar='ADDRESS', help='handles held from this client address (or host name)')
    output = parser.add_argument_group('output').add_mutually_exclusive_group()
    output.add_argument('--json', action='store_true', help='print JSON (with --list or --close)')
    output.add_argument('--csv', action='store_true', help='print CSV (with --list or --sessions)')
    pick.add_argument(
        '--all',
        action='store_true',
        help='with --close: every open handle on the cluster (nothing else chooses them all)',
    )
    parser.add_argument(
        '--yes', action='store_true', help='with --close or --close-session: do not ask for confirmation'
    )
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='with --close or --close-session: show what would be closed, and close nothing',
    )
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
    closing = args.close or args.close_session
    if not (args.list or closing or args.sessions) and chosen and not args.configure:
        parser.error(f'{chosen[0]} goes with --list, --close, --sessions or --close-session')
    # An empty pattern is contained in every path: taken literally, '--close --path ""' would close
    # every handle on the cluster. Closing them all must be said in so many words (--all).
    for flag, value in criteria:
        if not value.strip():
            parser.error(
                f'{flag} is empty: it would match every handle; give a pattern, or --close --all to close every handle'
            )
    if (args.sessions or args.close_session) and (args.path is not None or args.file_id is not None):
        parser.error('a session has no path or file: choose sessions by --user and --client')
    if args.close_session and not args.all and args.user is None and args.client is None:
        parser.error('--close-session needs --user NAME or --client ADDRESS, or --all')
    if args.all and not closing:
        parser.error('--all goes with --close or --close-session (--list without a pattern lists every handle)')
    if args.all and criteria:
        parser.error(f'--all closes every handle: it does not go with {criteria[0][0]}')
    if args.close and not args.all and args.path is None and args.file_id is None:
        parser.error('--close needs --path TEXT or --file-id N (--user and --client narrow them), or --all')
    if closing and args.csv:
        parser.error('--csv goes with --list or --sessions (a close can report --json)')
    if args.yes and not closing:
        parser.error('--yes goes with --close or --close-session')
    if args.dry_run and not closing:
        parser.error('--dry-run goes with --close or --close-session')
    if args.dry_run and args.yes:
        parser.error('--dry-run closes nothing: it does not go with --yes')
    if args.auto_refresh and (args.list or closing or args.sessions):
        parser.error('--auto-refresh is for the window, not the command line')


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
    command_line = args.list or args.close or args.sessions or args.close_session
    if not command_line and _display_missing():
        raise NoWindow(
            'the lock manager window needs a display ($DISPLAY is not set); '
            'use --list or --close here, or run it in a desktop session'
        )
    if not command_line:
        # Without a usable config file the window opens anyway, asking for the cluster; its Save
        # writes the file this run would have read.
        config, problem = None, ''
        try:
            config = load_cluster_config(find_config_file(args.config_file, CONFIG_ENV, CONFIG_FILENAME))
        except ConfigError as exc:
            problem = exc.message
        path = config.path if config else find_config_file(args.config_file, CONFIG_ENV, CONFIG_FILENAME, False)
        return _open_window(config, args.auto_refresh or 0, path or '', problem)
    config = load_cluster_config(find_config_file(args.config_file, CONFIG_ENV, CONFIG_FILENAME))

    client = connect_once(config)
    cluster = LockCluster(client)
    selector = Selector(args.path, args.file_id, args.user, args.client)
    if args.list:
        return list_handles(cluster, selector, args)
    if args.sessions:
        require_privileges(client, LIST_PRIVILEGES + SESSION_LIST_PRIVILEGES)
        return list_sessions(cluster, selector, args)
    # Checked before anything is listed, so a user who may not close learns it at once (a dry
    # run closes nothing, and may be asked by anyone who may list).
    if args.close_session:
        wanted = SESSION_LIST_PRIVILEGES + (() if args.dry_run else SESSION_CLOSE_PRIVILEGES)
        require_privileges(client, LIST_PRIVILEGES + wanted)
        return close_sessions(cluster, selector, args)
    require_privileges(client, LIST_PRIVILEGES + (() if args.dry_run else CLOSE_PRIVILEGES))
    return close_handles(cluster, selector, args)


def _open_window(config: Optional[ClusterConfig], auto_refresh_s: float, config_path: str, problem: str) -> int:
    try:
        from lockmanager.gui import run_window
    except ImportError as exc:  # a Python built without Tk
        raise ToolError(
            f'the window needs Tk ({exc}; e.g. apt-get install python3-tk); --list and --close work without it'
        ) from None
    return run_window(config, auto_refresh_s, config_path, problem)


def _picked(snapshot: Snapshot, selector: Selector) -> List[HandleRow]:
    _warn(snapshot)
    return sort_rows(selector.pick(snapshot.rows), 'path')


def _picked_sessions(snapshot: Snapshot, selector: Selector) -> List[SessionRow]:
    _warn(snapshot)
    return sort_sessions(selector.pick_sessions(snapshot.sessions), 'user')


def _warn(snapshot: Snapshot) -> None:
    # What the listing shows in a degraded way and why (auth ids without PRIVILEGE_IDENTITY_READ...):
    # a warning on stderr, since the listing still goes on.
    for note in snapshot.notes:
        log.warning(note)


def _nothing_matched(selector: Selector) -> NothingMatched:
    return NothingMatched(f'no open SMB file handle matched ({selector.describe()})')


def list_handles(cluster: LockCluster, selector: Selector, args: argparse.Namespace) -> int:
    return _print_listing(_picked(cluster.fetch(), selector), args, COLUMNS, _nothing_matched(selector))


def _print_listing(
    rows: Sequence[Union[HandleRow, SessionRow]], args: argparse.Namespace, columns: Sequence[Column], none: ToolError
) -> int:
    if args.json:
        write_json(rows, sys.stdout)
    elif args.csv:
        write_csv(rows, sys.stdout, sessions=columns is SESSION_COLUMNS)
    elif rows:
        print('\n'.join(table_lines(rows, columns)))
    if not rows:  # after the (empty) JSON or CSV, so that a script still reads a valid document
        raise none
    return OK


def _confirmed(plan: Union[ClosePlan, SessionPlan], noun: str = 'handle') -> bool:
    if not sys.stdin.isatty():
        raise NoTerminal(
            f'not closing {plural(len(plan), noun)} without confirmation: there is no terminal '
            f'to ask on; add --yes to close them (or --dry-run to see them)'
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
    return _carry_out(plan, args, 'handle', cluster.close)


def _carry_out(
    plan: Union[ClosePlan, SessionPlan],
    args: argparse.Namespace,
    noun: str,
    close: Callable[[Sequence[Any]], Sequence[CloseOutcome]],
) -> int:
    """The plan shown and closed nothing (--dry-run), or confirmed (or --yes) and closed."""
    if args.dry_run:
        print(plan.question())
        print(f'dry run: {plural(len(plan), noun)} would be closed; nothing was closed')
        return OK
    if not args.yes and not _confirmed(plan, noun):
        raise NotConfirmed('nothing closed: the close was not confirmed')
    return _report_outcomes(close(plan.rows), args, noun)


def _report_outcomes(outcomes: Sequence[CloseOutcome], args: argparse.Namespace, noun: str) -> int:
    if args.json:
        write_outcomes_json(outcomes, sys.stdout)
    for outcome in outcomes:
        if not outcome.closed:
            print(error_line(outcome.describe(), PROG), file=sys.stderr)
        elif not args.json:
            print(outcome.describe())
    print(summary(outcomes, noun), file=sys.stderr if args.json else sys.stdout)
    return OK if all(outcome.closed for outcome in outcomes) else SOME_NOT_CLOSED


def _no_session_matched(selector: Selector) -> NothingMatched:
    return NothingMatched(f'no SMB session matched ({selector.describe()})')


def list_sessions(cluster: LockCluster, selector: Selector, args: argparse.Namespace) -> int:
    return _print_listing(
        _picked_sessions(cluster.fetch(), selector), args, SESSION_COLUMNS, _no_session_matched(selector)
    )


def close_sessions(cluster: LockCluster, selector: Selector, args: argparse.Namespace) -> int:
    rows = _picked_sessions(cluster.fetch(), selector)
    if not rows:
        raise _no_session_matched(selector)
    plan = SessionPlan.of(rows, f'the sessions matching {selector.describe()}')
    return _carry_out(plan, args, 'session', cluster.close_sessions)
