"""Command line of qfs_filelock.py: parse, check, then watch, report or configure."""

import argparse
import datetime as dt
import gc
import logging
import math
import os
import signal
import sys
from types import FrameType
from typing import Any, Dict, Iterator, List, Optional, Tuple

from common.auth import ONE_SHOT_RETRIES, Client, connect, require_privileges
from common.config import ClusterConfig, configure_interactively, find_config_file, load_cluster_config
from common.errors import FAILURE, ArgumentParser, ToolError, reading_reply, translated
from common.logs import add_common_arguments, setup_logging
from qumulo.lib.request import RequestError

from . import policy as policy_file
from .audit import AuditLog
from .evidence import DEFAULT_EVERY_S, ClusterCopy
from .errors import AlreadyRunning, BadOption, DirectoryMissing, ReportIncomplete
from .hooks import Fanout, Hooks
from .metrics import Metrics, check_free
from .clock import ClusterClock
from .health import Health, stuck_threshold
from .policy import Folder, check_distinct
from .policy import MAX_MATTER, valid_matter
from .report import write_csv, write_json, write_table
from .report import Tally, add_failures, add_matters, columns_for, missing_of, read_audit, rows
from .locker import Policy
from .retention import Retention, RetentionError
from .service import Service
from .stream import silence_threshold
from .verify import verify
from .watcher import DEFAULT_EVENTS, EVENT_TYPES, Shutdown

log = logging.getLogger(__name__)

PROG = 'qfs_filelock.py'  # argparse's prog and the start of every error line
VERSION = '2.0'
CONFIG_FILE = 'qfs_filelock_config.ini'
CONFIG_ENV = 'QFS_FILELOCK_CONFIG'
DRAIN_TIMEOUT_S = 60
# The longest --interval, --settle and --rescan-every: a timer cannot wait past ~292 years
# (threading.TIMEOUT_MAX; beyond it every wait raises OverflowError), and no file needs to be
# quiet, or a tree left unscanned, for more than a month.
MAX_WAIT_S = 30 * 86400
MAX_EXPIRING_DAYS = 365250  # 1000 years, the longest retention accepted
# The metrics are for this host's Prometheus agent unless a site says otherwise: they name folders.
METRICS_ADDRESS = '127.0.0.1'


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description='Watch a Qumulo directory and WORM-lock (retention period or legal hold) the files written there.',
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        '--directory-path',
        metavar='PATH',
        action='append',
        help='directory to watch, e.g. /finance/records (may be repeated: one service for them all)',
    )

    where.add_argument(
        '--file-id',
        '--file-num',
        dest='file_id',
        metavar='ID',
        help='directory to watch, by file id (qq fs_file_get_attr --path ... | jq .file_number)',
    )
    parser.add_argument(
        '--policy',
        metavar='FILE',
        help='a TOML file naming each folder to watch with its own rules (SIGHUP reloads it)',
    )
    add_common_arguments(parser)
    parser.add_argument(
        '--log-max-bytes', type=int, default=0, metavar='N', help='rotate the --output log file at N bytes (keeps 5)'
    )
    parser.add_argument('--recursive', action='store_true', help='watch every directory below it too')
    parser.add_argument(
        '--interval',
        type=float,
        default=15.0,
        metavar='SECONDS',
        help='wait this long after an event before locking (default 15; 0 locks at once)',
    )
    parser.add_argument(
        '--settle',
        type=float,
        metavar='SECONDS',
        help='lock a file only once it has been quiet (no write, size, mtime or move) this long',
    )
    lock = parser.add_argument_group('what lock to apply (one or both)')
    lock.add_argument(
        '--retention',
        metavar='PERIOD',
        help='retention: 7d, 6m, 2y (calendar months/years) or a date such as 2031-12-31',
    )
    lock.add_argument(
        '--legal-hold',
        nargs='?',
        const=True,
        default=False,
        metavar='MATTER',
        help='put files on legal hold; a MATTER such as CASE-2026-17 is recorded in the audit log',
    )
    parser.add_argument(
        '--events',
        default=','.join(DEFAULT_EVENTS),
        metavar='TYPE,...',
        help=f"notification types that start a lock, any of Qumulo's 24 (default {','.join(DEFAULT_EVENTS)}; "
        'Qumulo recommends child_data_written or child_size_changed for WORM)',
    )
    parser.add_argument('--workers', type=int, default=8, help='files locked side by side (default 8)')
    parser.add_argument(
        '--rescan-every',
        type=float,
        default=3600.0,
        metavar='SECONDS',
        help='catch-up scan period (default 3600; 0: only at start and after reconnects)',
    )
    parser.add_argument(
        '--audit-log',
        metavar='FILE',
        help='append one JSON line per action on a file, hash-chained; with --report, read matters from it',
    )
    parser.add_argument(
        '--audit-cluster-dir',
        metavar='PATH',
        help='also seal the audit log in this cluster folder: a WORM-locked file every --audit-cluster-every',
    )
    parser.add_argument(
        '--audit-cluster-every',
        type=float,
        default=DEFAULT_EVERY_S,
        metavar='SECONDS',
        help=f'how often the lines written since the last seal are sealed (default {DEFAULT_EVERY_S:g})',
    )
    parser.add_argument(
        '--audit-retention',
        metavar='PERIOD',
        help="the sealed files' retention (default: the longest of the folders', or a legal hold when none has one)",
    )
    parser.add_argument(
        '--metrics-port',
        type=int,
        metavar='PORT',
        help='serve Prometheus metrics on http://ADDRESS:PORT/metrics (0: any free port, logged)',
    )
    parser.add_argument(
        '--metrics-address', metavar='ADDRESS', help=f'the address to serve the metrics on (default {METRICS_ADDRESS})'
    )
    parser.add_argument('--dry-run', action='store_true', help='show what would be locked, lock nothing')
    report = parser.add_argument_group('report instead of watching')
    report.add_argument('--report', metavar='PATH', help='list every file under PATH with its lock state')
    report.add_argument(
        '--expiring-within', type=float, metavar='DAYS', help='only files whose retention ends within DAYS'
    )
    report.add_argument('--unlocked-only', action='store_true', help='only files that are not locked')
    report.add_argument('--csv', action='store_true', help='CSV instead of a table')
    report.add_argument('--json', action='store_true', help='JSON instead of a table')
    report.add_argument(
        '--matter', metavar='NAME', help='only files the --audit-log records as held for this legal-hold matter'
    )
    parser.add_argument(
        '--verify-audit',
        nargs='+',
        metavar='FILE',
        help="check the audit log's hash chain across FILE... (oldest first, rotated files too) and exit",
    )
    daemon = parser.add_argument_group('running as a daemon')
    daemon.add_argument('--run-as-daemon', action='store_true', help='detach and run in the background')
    daemon.add_argument('--pid-file', default='/run/qfs_filelock.pid', help='(default /run/qfs_filelock.pid)')
    daemon.add_argument(
        '--log-file',
        default='/var/log/qfs_filelock.log',
        help="the daemon's log when --output is not given (default /var/log/qfs_filelock.log)",
    )
    parser.add_argument('--version', action='version', version=f'qfs_filelock {VERSION}')
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Everything that can be refused before touching the cluster, as one argparse line each."""
    if args.configure:
        return
    if args.verify_audit:
        if args.report or args.directory_path or args.file_id:
            parser.error('--verify-audit FILE... runs alone, without --report or a directory to watch')
        return
    if args.report:
        if args.matter is not None:
            if not args.audit_log:
                parser.error('--matter needs --audit-log FILE: the cluster stores no matter, the audit log does')
            check_matter(parser, '--matter', args.matter)
        if not args.report.startswith('/'):
            parser.error(f'--report must be an absolute cluster path, not {args.report!r}')
        if args.csv and args.json:
            parser.error('choose one of --csv and --json')
        if args.expiring_within is not None and not 0 <= args.expiring_within < math.inf:
            parser.error('--expiring-within must be 0 or more days')
        if args.expiring_within is not None and args.expiring_within > MAX_EXPIRING_DAYS:
            parser.error(f'--expiring-within must be at most {MAX_EXPIRING_DAYS} days (1000 years)')
        return
    report_only = [
        flag
        for flag, given in (
            ('--csv', args.csv),
            ('--json', args.json),
            ('--unlocked-only', args.unlocked_only),
            ('--expiring-within', args.expiring_within is not None),
            ('--matter', args.matter is not None),
        )
        if given
    ]
    if report_only:
        parser.error(f'{", ".join(report_only)} only go with --report PATH')
    if not (args.directory_path or args.file_id or args.policy):
        parser.error('give the directory to watch: --directory-path PATH, --file-id ID or --policy FILE')
    for path in args.directory_path or ():
        if not path.startswith('/'):
            parser.error(f'--directory-path must be an absolute cluster path, not {path!r}')
    if len(set(args.directory_path or ())) < len(args.directory_path or ()):
        parser.error('--directory-path names the same directory twice')
    if isinstance(args.legal_hold, str):  # --legal-hold MATTER (a bare --legal-hold is True)
        check_matter(parser, '--legal-hold', args.legal_hold)
    if (args.directory_path or args.file_id) and not args.retention and not args.legal_hold:
        parser.error('nothing to lock with: give --retention PERIOD, --legal-hold, or both')
    if args.retention:
        try:
            args.retention = Retention.parse(args.retention)
            args.retention.check_future(dt.datetime.now(dt.timezone.utc))
        except RetentionError as e:
            parser.error(str(e))
    if not 0 <= args.interval < math.inf or (args.settle is not None and not 0 < args.settle < math.inf):
        parser.error('--interval must be 0 or more and --settle more than 0')
    if not 0 <= args.rescan_every < math.inf:
        parser.error('--rescan-every must be 0 (no periodic scan) or more seconds')
    for flag, seconds in (
        ('--interval', args.interval),
        ('--settle', args.settle),
        ('--rescan-every', args.rescan_every),
    ):
        if seconds is not None and seconds > MAX_WAIT_S:
            parser.error(f'{flag} must be at most {MAX_WAIT_S} s (30 days), not {seconds:g}')
    if not 1 <= args.workers <= 64:
        parser.error('--workers must be between 1 and 64')
    check_cluster_copy(parser, args)
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        parser.error(f'--metrics-port must be a port number, 0 to 65535, not {args.metrics_port}')
    if args.metrics_address is not None and args.metrics_port is None:
        parser.error('--metrics-address only goes with --metrics-port PORT')
    events = [e.strip() for e in args.events.split(',') if e.strip()]
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown or not events:
        parser.error(f'unknown event type {", ".join(unknown) or "(none)"}; choose from {", ".join(EVENT_TYPES)}')
    args.events = tuple(dict.fromkeys(events))


def check_cluster_copy(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.audit_cluster_dir is None:
        if args.audit_retention or args.audit_cluster_every != DEFAULT_EVERY_S:
            parser.error('--audit-retention and --audit-cluster-every only go with --audit-cluster-dir PATH')
        return
    if not args.audit_log:
        parser.error('--audit-cluster-dir needs --audit-log FILE: what is sealed on the cluster is that log')
    if args.dry_run:
        parser.error('--audit-cluster-dir writes and locks files on the cluster: not with --dry-run')
    if not args.audit_cluster_dir.startswith('/'):
        parser.error(f'--audit-cluster-dir must be an absolute cluster path, not {args.audit_cluster_dir!r}')
    if not 1 <= args.audit_cluster_every <= MAX_WAIT_S:
        parser.error(f'--audit-cluster-every must be 1 to {MAX_WAIT_S:g} seconds')
    if args.audit_retention:
        try:
            args.audit_retention = Retention.parse(args.audit_retention)
            args.audit_retention.check_future(dt.datetime.now(dt.timezone.utc))
        except RetentionError as e:
            parser.error(str(e).replace('--retention', '--audit-retention'))


def check_matter(parser: argparse.ArgumentParser, flag: str, matter: str) -> None:
    if not valid_matter(matter):
        shown = repr(matter if len(matter) <= 40 else matter[:40] + '...')
        parser.error(
            f'{flag}: a matter is printable text on one line, at most {MAX_MATTER} characters, with no space '
            f'at either end, not {shown}'
        )


def main(argv: Optional[List[str]] = None) -> int:
    # SIGPIPE stays ignored (Python's default), not SIG_DFL, which would also kill the watcher
    # silently when the cluster closes a connection. A closed stdout instead ends
    # `--report / | head` quietly (run_main), and the watcher keeps locking with its log
    # reader gone: the audit log still records every action.
    logging.raiseExceptions = False
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    if args.configure:
        path = find_config_file(args.config_file, CONFIG_ENV, CONFIG_FILE, must_exist=False)
        configure_interactively(path)
        return 0
    if args.verify_audit:
        return run_verify_audit(args)
    config = load_cluster_config(find_config_file(args.config_file, CONFIG_ENV, CONFIG_FILE))
    if args.report:
        return run_report(args, config)
    if args.run_as_daemon:
        return run_daemon(args, config)
    setup_logging(debug=args.debug, output=args.output, max_bytes=args.log_max_bytes)
    return watch(args, config)


def translating(found: Iterator[Dict[str, Any]], config: ClusterConfig) -> Iterator[Dict[str, Any]]:
    """The rows, with what the cluster answers while they are read turned into the user's line."""
    with translated(config.host, config.port):
        yield from found


def run_report(args: argparse.Namespace, config: ClusterConfig) -> int:
    setup_logging(debug=args.debug, output=args.output, console=sys.stderr)  # stdout is the report
    # Read before the walk, so a wrong path fails fast.
    matters, failures = read_audit(args.audit_log) if args.audit_log else (None, None)
    client = connect(config, retries=ONE_SHOT_RETRIES)  # a report is run once: a busy cluster is asked again
    with translated(config.host, config.port):
        with reading_reply(f'the attributes of {args.report}'):
            top = client.fs.get_file_attr(path=args.report)
            directory_id, top_path = top['id'], top['path']
    found = translating(
        rows(
            client,
            directory_id,
            dt.datetime.now(dt.timezone.utc),
            unlocked_only=args.unlocked_only,
            expiring_within=args.expiring_within,
            top_path=top_path,
        ),
        config,
    )
    if not (args.csv or args.json):
        found = iter(sorted(found, key=lambda r: r['path']))  # a table sizes its columns from every row
    if matters is not None:
        found = add_failures(add_matters(found, matters, args.matter), failures)
    tally = Tally(found)
    writer = write_csv if args.csv else write_json if args.json else write_table
    # CSV and JSON are written as the rows are read, in constant memory, in tree order. The
    # writing stays outside the translation of cluster errors: a reader gone (`| head`) ends the
    # report quietly, not as an error.
    writer(tally if args.csv or args.json else list(tally), sys.stdout, columns_for(matters is not None))
    missing = missing_of(tally.n)
    if missing:
        # The report stands as written; the status tells a script it is not a complete account.
        sys.stdout.flush()
        raise ReportIncomplete(
            f"the report is incomplete: {missing} (shown as unreadable, with the cluster's reason); "
            f'reading a lock needs READ_ACL on the file, listing a directory READ on it'
        )
    return 0


def run_verify_audit(args: argparse.Namespace) -> int:
    """One line per file checked on stdout; the first break, if any, is the error line."""
    for checked in verify(args.verify_audit):
        print(checked.describe(), flush=True)
    return 0


def command_line_folders(args: argparse.Namespace, paths: List[str]) -> List[Folder]:
    """The folders named on the command line, each under the rules the command line gives."""
    hold = getattr(args, 'legal_hold', False)
    return [
        Folder(
            name=path,
            path=path.rstrip('/') or '/',
            recursive=args.recursive,
            retention=args.retention or None,
            legal_hold=bool(hold),
            matter=hold if isinstance(hold, str) else None,
            settle_s=args.settle,
            interval_s=args.interval,
            events=args.events,
        )
        for path in paths
    ]


def all_folders(command_line: List[Folder], args: argparse.Namespace) -> List[Folder]:
    """The command line's folders and the policy file's (read again at every reload)."""
    folders = command_line + load_policy(args)
    check_distinct(folders, 'the folders to watch')
    return folders


def resolve_file_id(client: Client, file_id: str) -> str:
    try:
        attrs = client.fs.get_file_attr(id_=file_id)
    except RequestError as e:
        if e.status_code == 404:
            raise DirectoryMissing(f'the directory file id {file_id} does not exist on the cluster') from None
        raise
    return attrs['path'].rstrip('/') or '/'


def load_policy(args: argparse.Namespace) -> List[Folder]:
    return policy_file.load(args.policy, dt.datetime.now(dt.timezone.utc)) if args.policy else []


def open_audit_log(args: argparse.Namespace) -> AuditLog:
    try:
        return AuditLog(args.audit_log)
    except OSError as e:
        raise BadOption(f'--audit-log {args.audit_log}: cannot open it for appending: {e.strerror or e}') from None


def check_cluster(args: argparse.Namespace, config: ClusterConfig, client: Client, service: Service) -> None:
    """Everything the cluster can refuse, before anything is watched or locked."""
    with translated(config.host, config.port):
        if not args.dry_run:
            require_privileges(client, ['PRIVILEGE_FS_FILE_LOCK_WRITE'])
        service.check()  # leaves each folder's stream open for the watch


def new_service(
    args: argparse.Namespace, config: ClusterConfig, audit: Optional[AuditLog], hooks: Optional[Hooks] = None
) -> Service:
    client = connect(config)
    with translated(config.host, config.port):
        paths = list(args.directory_path or ()) + ([resolve_file_id(client, args.file_id)] if args.file_id else [])
    command_line = command_line_folders(args, paths)
    service = Service(
        client,
        config,
        all_folders(command_line, args),
        audit,
        ClusterClock(),
        workers=args.workers,
        rescan_every_s=args.rescan_every or None,
        dry_run=args.dry_run,
        hooks=hooks,
    )
    if args.policy:
        service.on_reload(lambda: all_folders(command_line, args))
    return service


def observers(args: argparse.Namespace) -> Tuple[Metrics, Health]:
    """The metrics (served with --metrics-port, before anything else: a port in use is refused at
    once) and systemd's notify protocol and watchdog (when run by systemd)."""
    try:
        silence_s, stuck_s = silence_threshold(), stuck_threshold()
    except ValueError as e:
        raise BadOption(str(e)) from None
    metrics = Metrics()
    if args.metrics_port is not None:
        args.metrics_port = metrics.serve(args.metrics_address or METRICS_ADDRESS, args.metrics_port)
    return metrics, Health.from_environment(silence_s, stuck_s)


def watch(args: argparse.Namespace, config: ClusterConfig) -> int:
    audit = open_audit_log(args)
    metrics, health = observers(args)
    service = new_service(args, config, audit, Fanout([metrics, health]))
    metrics.watch_schedule(service.schedule)
    health.watch(service.schedule, service.dead_threads)
    check_cluster(args, config, service.client, service)
    evidence = open_cluster_copy(args, config, service, audit)
    print_header(args, config, service)

    def shutdown(signum: int, frame: Optional[FrameType]) -> None:
        log.info('%s received: finishing the locks in progress', signal.Signals(signum).name)
        service.stop(close_streams=False)
        raise Shutdown()

    def reload(signum: int, frame: Optional[FrameType]) -> None:
        log.info('SIGHUP received: reloading %s', args.policy or 'nothing (no --policy file)')
        service.request_reload()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGHUP, reload)
    health.start()
    service.start()
    try:
        with translated(config.host, config.port):
            service.run()
    except Shutdown:
        pass
    finally:
        health.stop()
        service.stop()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the drain short
        service.drain(DRAIN_TIMEOUT_S)
        audit.close()
        if evidence is not None:
            evidence.close()
        log.info('stopped: %s', audit.summary())
    return 0


def open_cluster_copy(
    args: argparse.Namespace, config: ClusterConfig, service: Service, audit: AuditLog
) -> Optional[ClusterCopy]:
    """The audit log's sealed copy on the cluster (--audit-cluster-dir), taking every line from now."""
    if args.audit_cluster_dir is None:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    retention = args.audit_retention or max(
        (f.retention for f in service.folders if f.retention is not None),
        key=lambda r: r.target(now),
        default=None,
    )
    evidence = ClusterCopy(
        service.client.clone(),
        args.audit_cluster_dir,
        Policy(retention=retention, legal_hold=retention is None),
        os.path.splitext(os.path.basename(args.audit_log))[0],
        service.clock,
        args.audit_cluster_every,
    )
    with translated(config.host, config.port):
        evidence.check()
    try:
        evidence.resume(args.audit_log)
    except OSError as e:
        raise BadOption(f'--audit-log {args.audit_log}: cannot read it: {e.strerror or e}') from None
    audit.on_written = evidence.add
    evidence.start()
    return evidence


def print_header(args: argparse.Namespace, config: ClusterConfig, service: Service) -> None:
    log.info('QFS File Lock %s%s', VERSION, ' (dry run: nothing will be locked)' if args.dry_run else '')
    log.info(
        '  cluster:   %s:%s as %s',
        config.host,
        config.port,
        config.username if not config.access_token else 'an access token',
    )
    for folder in sorted(service.folders, key=lambda f: f.path):
        watcher = service.watchers[folder.path]
        log.info(
            '  directory: %s (id %s)%s%s',
            watcher.directory_path,
            watcher.directory_id,
            ', recursive' if folder.recursive else '',
            '' if folder.name == folder.path else f', policy {folder.name}',
        )
        log.info('  lock:      %s; %d workers', folder.lock_text(), args.workers)
        log.info('  events:    %s', ', '.join(folder.events))
        if folder.exclude:
            log.info('  exclude:   %s', ' '.join(folder.exclude))
    log.info(
        '  rescan:    at start, after reconnects%s', f' and every {args.rescan_every:g} s' if args.rescan_every else ''
    )
    if args.policy:
        log.info('  policy:    %s (SIGHUP reloads it)', os.path.abspath(args.policy))
    if args.audit_log:
        log.info('  audit log: %s', os.path.abspath(args.audit_log))
    if args.audit_cluster_dir:
        log.info('  sealed in: %s on the cluster, every %g s', args.audit_cluster_dir, args.audit_cluster_every)
    if args.metrics_port is not None:
        host = args.metrics_address or METRICS_ADDRESS
        log.info('  metrics:   http://%s:%d/metrics', f'[{host}]' if ':' in host else host, args.metrics_port)
    if not config.ca_bundle:
        log.warning('the cluster certificate is not verified (set CA_BUNDLE in %s to verify it)', config.path)


def run_daemon(args: argparse.Namespace, config: ClusterConfig) -> int:
    import daemon
    import daemon.pidfile

    # Refuse bad settings while a terminal can still show the reason: once detached, stderr is
    # /dev/null and the exit status reaches no one.
    for option, path in (('--pid-file', args.pid_file), ('--log-file', args.output or args.log_file)):
        if not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
            raise BadOption(f'{option} {path}: its directory is not writable')
    pid_file = os.path.abspath(args.pid_file)
    stale = check_pid_file(pid_file)
    if args.metrics_port is not None:
        check_free(args.metrics_address or METRICS_ADDRESS, args.metrics_port)
    args.output = os.path.abspath(args.output or args.log_file)
    if args.audit_log:
        args.audit_log = os.path.abspath(args.audit_log)
        open_audit_log(args).close()
    if args.policy:
        args.policy = os.path.abspath(args.policy)  # the daemon runs in /
    checked = new_service(args, config, None)
    check_cluster(args, config, checked.client, checked)
    checked.close_opened_streams()  # the daemon opens its own, after detaching
    # DaemonContext closes every descriptor; a socket object left behind would later close
    # whatever file (the log) reuses its number. Close it now and collect any cycle holding one.
    checked.client.conninfo.close()
    del checked
    gc.collect()
    context = daemon.DaemonContext(
        pidfile=daemon.pidfile.TimeoutPIDLockFile(pid_file, 5), umask=0o027, working_directory='/'
    )
    with context:
        setup_logging(debug=args.debug, output=args.output, max_bytes=args.log_max_bytes)
        if stale:
            log.info('removed the stale pid file %s (process %s was gone)', pid_file, stale)
        try:
            return watch(args, config)
        except ToolError as e:  # stderr is /dev/null now: the log is the only place to say why
            log.error('%s', e.message)
            return e.exit_code
        except Exception:
            log.exception('the watcher stopped on an unexpected error')
            return FAILURE


def check_pid_file(path: str) -> Optional[str]:
    """Refuse to start a second daemon on the same pid file; remove one left by a dead process.
    Returns the dead process's pid when a stale file was removed."""
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise BadOption(f'--pid-file {path}: cannot read it: {e.strerror}') from None
    pid = int(text) if text.isdigit() else None
    if pid:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise AlreadyRunning(f"--pid-file {path}: process {pid} (another user's) is running") from None
        else:
            raise AlreadyRunning(
                f'--pid-file {path}: process {pid} named there is still running (a watcher '
                f'already started?); stop it first (kill {pid}) or give another --pid-file'
            )
    try:
        os.unlink(path)
    except OSError as e:
        raise BadOption(f'--pid-file {path}: cannot remove the stale pid file: {e.strerror}') from None
    return text or '?'
