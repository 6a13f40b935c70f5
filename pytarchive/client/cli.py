"""The pytarchive client: send one command to the service and print its answer.

    pytarchive prepare PATH "DESCRIPTION"       pytarchive queue [ID] [--all] [--json]
    pytarchive archive PATH BARCODE[,BARCODE...]    pytarchive requeue ID[,ID...] | --all
    pytarchive copy PATH BARCODE [--from-tape]
    pytarchive cancel ID[,ID...]                pytarchive find PATTERN [--json]
    pytarchive ls BARCODE | PATH [SUBPATH]      pytarchive history PATH
    pytarchive restore PATH [--to DIR] [--only SUBPATH] [--force]
    pytarchive explore PATH [--part N] | --stop  pytarchive summary [--json]
    pytarchive deleteable [--json]              pytarchive inventory [--json]
    pytarchive scan | format BARCODE | check BARCODE | import BARCODE

Commands that queue a task return at once, or with --wait follow it (progress on a terminal) and
print its result; inventory always waits, since its report is the point. Thin on purpose: the
service checks the arguments, decides who may do what and renders the text.
"""

import argparse
import json
import socket
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from common.errors import INTERRUPTED, PRIVILEGE, SERVICE_DOWN, ArgumentParser, ToolError
from pytarchive import config as configuration
from pytarchive.client.protocol import DONE, ENDED, TIMEOUT_S, Task, request
from pytarchive.client.render import progress_text

PROG = 'pytarchive'
POLL_S = 0.5


class ServiceDown(ToolError):
    """The service is not running, or its socket cannot be reached."""

    exit_code = SERVICE_DOWN


class Refused(ToolError):
    """The service (or the socket's permissions) turned this user away."""

    exit_code = PRIVILEGE


class TaskFailed(ToolError):
    """The service refused the request, or the task followed with --wait did not end done."""


def build_parser() -> ArgumentParser:
    # --config-file and --socket work before or after the command (`pytarchive queue --config-file X`).
    # --config is the same option under its older name, kept so that existing scripts go on working.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        '--config-file',
        '--config',
        dest='config',
        metavar='PATH',
        default=argparse.SUPPRESS,
        help=f'config file naming the socket (default {configuration.DEFAULT_PATH})',
    )
    common.add_argument(
        '--socket',
        metavar='PATH',
        default=argparse.SUPPRESS,
        help="the service's socket, instead of reading it from the config file",
    )
    parser = ArgumentParser(
        prog=PROG, parents=[common], description='Send a command to the pytarchive service (tape archiving on LTFS).'
    )
    commands = parser.add_subparsers(dest='command', metavar='COMMAND', required=True, parser_class=ArgumentParser)
    queue = commands.add_parser(
        'queue', parents=[common], help='list the tasks: id, kind, arguments, state, progress, age'
    )
    queue.add_argument('id', nargs='?', type=int, metavar='ID', help='show this task whole (its full result and error)')
    queue.add_argument('--all', action='store_true', help='every task, the old finished ones too')
    queue.add_argument('--json', action='store_true', help='JSON instead of a table')
    requeue = commands.add_parser('requeue', parents=[common], help='run failed or interrupted tasks again')
    requeue.add_argument('ids', nargs='*', metavar='ID[,ID...]', help='task ids, as `pytarchive queue` shows them')
    requeue.add_argument('--all', action='store_true', help='every failed, interrupted or cancelled task')
    cancel = commands.add_parser(
        'cancel', parents=[common], help='cancel tasks: a queued one never runs, a running one stops at a checkpoint'
    )
    cancel.add_argument('ids', nargs='+', metavar='ID[,ID...]', help='task ids, as `pytarchive queue` shows them')
    summary = commands.add_parser(
        'summary',
        parents=[common],
        help='the tapes (slot or drive, capacity, used, free, folders), the drive, the queue',
    )
    summary.add_argument('--json', action='store_true', help='JSON instead of a table')
    deleteable = commands.add_parser(
        'deleteable', parents=[common], help='folders archived and verified: safe to delete by hand'
    )
    deleteable.add_argument('--json', action='store_true', help='JSON instead of a table')
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument('--wait', action='store_true', help='follow the task until it ends and print its result')
    queued = [common, waiting]
    commands.add_parser('scan', parents=queued, help='queue a scan of the library (mtx status) into the tape list')
    for name, text in (
        ('format', 'queue formatting a new tape with LTFS (never erases a formatted one)'),
        ('check', "queue reading a tape's capacity and free space"),
        ('import', "queue rebuilding a tape's catalog entries from the description on the tape"),
    ):
        sub = commands.add_parser(name, parents=queued, help=text)
        sub.add_argument('barcode', metavar='BARCODE', help="the tape's barcode, e.g. TPN001L9")
    prepare = commands.add_parser(
        'prepare', parents=queued, help="record a folder's files (packing it if it has very many) before archiving"
    )
    prepare.add_argument('path', metavar='PATH', help='the folder, as a full path')
    prepare.add_argument('description', metavar='DESCRIPTION', nargs='?', default='', help='what it is, for people')
    archive = commands.add_parser('archive', parents=queued, help='copy a prepared folder to a tape and verify it')
    archive.add_argument('path', metavar='PATH', help='the prepared folder, as a full path')
    archive.add_argument(
        'barcode',
        metavar='BARCODE[,BARCODE...]',
        help='the tape, e.g. TPN123L9; several for a folder larger than a tape (archived in parts, in that order)',
    )
    copy = commands.add_parser(
        'copy', parents=queued, help='make a further verified copy of an archived folder on another tape'
    )
    copy.add_argument('path', metavar='PATH', help='the archived folder, as a full path')
    copy.add_argument('barcode', metavar='BARCODE', help='the tape for the copy, e.g. TPN124L9')
    copy.add_argument(
        '--from-tape', action='store_true', help='read the folder from a copy on tape even if it is still on disk'
    )
    restore = commands.add_parser('restore', parents=queued, help='restore an archived folder, sub-folder or file')
    restore.add_argument('path', metavar='PATH', help='the archived folder, as a full path')
    restore.add_argument('--to', metavar='DIR', help='restore into DIR instead of the original place')
    restore.add_argument('--only', metavar='SUBPATH', default='', help='only this sub-folder or file of it')
    restore.add_argument('--force', action='store_true', help='overwrite files that exist (default: refuse)')
    explore = commands.add_parser(
        'explore', parents=queued, help="export an archived folder's tape read-only over NFS; --stop ends it"
    )
    explore.add_argument('path', metavar='PATH', nargs='?', help='the archived folder, as a full path')
    explore.add_argument('--stop', action='store_true', help='end the running explore')
    explore.add_argument(
        '--part', type=int, default=1, metavar='N', help='for a folder archived across tapes: the tape of part N'
    )
    verify = commands.add_parser(
        'verify', parents=queued, help="fixity: re-read a tape's archives (or one folder's) against their checksums"
    )
    verify.add_argument('target', metavar='BARCODE|PATH', help='a tape, or an archived folder as a full path')
    find = commands.add_parser(
        'find', parents=[common], help='which tape holds what: a part of a path, or a glob, across the catalog'
    )
    find.add_argument('pattern', metavar='PATTERN', help='a part of a path (any case), or a glob such as */raw/*.tif')
    ls = commands.add_parser('ls', parents=[common], help='what a tape holds, or what an archived folder holds')
    ls.add_argument('target', metavar='BARCODE|PATH', help='a tape, or an archived folder as a full path')
    ls.add_argument('subpath', metavar='SUBPATH', nargs='?', default='', help='only this part of the folder')
    for sub in (find, ls):
        sub.add_argument('--limit', type=int, default=1000, help='show at most this many entries (default 1000)')
        sub.add_argument('--json', action='store_true', help='JSON instead of a table')
    history = commands.add_parser('history', parents=[common], help='every archive of a folder: tape and state')
    history.add_argument('path', metavar='PATH', help='the folder, as a full path')
    history.add_argument('--json', action='store_true', help='JSON instead of a table')
    inventory = commands.add_parser(
        'inventory', parents=[common], help='size and age of every subfolder of source_folders, printed and emailed'
    )
    inventory.add_argument('--json', action='store_true', help='JSON instead of tables')
    return parser


def _task_ids(parser: ArgumentParser, words: List[str], command: str = 'requeue') -> List[int]:
    ids = []
    for item in ','.join(words).split(','):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit() or int(item) == 0:
            parser.error(f'{command}: {item!r} is not a task id (a positive whole number)')
        ids.append(int(item))
    return ids


def build_request(parser: ArgumentParser, args: argparse.Namespace) -> Dict[str, Any]:
    if args.command == 'queue':
        if args.id is not None and (args.id <= 0 or args.all):
            parser.error('queue: give one task id (a positive whole number), or --all, not both')
        return {'json': args.json, 'all': args.all, **({'id': args.id} if args.id is not None else {})}
    if args.command in ('summary', 'deleteable', 'inventory'):
        return {'json': args.json}
    if args.command == 'verify':
        return {'target': args.target}
    if args.command == 'find':
        return {'pattern': args.pattern, 'limit': args.limit, 'json': args.json}
    if args.command == 'ls':
        return {'target': args.target, 'subpath': args.subpath, 'limit': args.limit, 'json': args.json}
    if args.command == 'history':
        return {'path': args.path, 'json': args.json}
    if args.command == 'requeue':
        ids = _task_ids(parser, args.ids)
        if args.all and ids:
            parser.error('requeue: give task ids or --all, not both')
        if not args.all and not ids:
            parser.error('requeue: which tasks? give their ids (e.g. 3,5) or --all')
        return {'all': True} if args.all else {'ids': ids}
    if args.command == 'cancel':
        ids = _task_ids(parser, args.ids, 'cancel')
        if not ids:
            parser.error('cancel: which tasks? give their ids (e.g. 3,5)')
        return {'ids': ids}
    if args.command in ('format', 'check', 'import'):
        return {'barcode': args.barcode}
    if args.command == 'prepare':
        return {'path': args.path, 'description': args.description}
    if args.command == 'archive':
        return {'path': args.path, 'barcode': args.barcode}
    if args.command == 'copy':
        return {'path': args.path, 'barcode': args.barcode, 'from_tape': args.from_tape}
    if args.command == 'restore':
        return {'path': args.path, 'to': args.to, 'only': args.only, 'force': args.force}
    if args.command == 'explore':
        if args.stop == bool(args.path):
            parser.error("explore: give the archived folder's PATH, or --stop")
        if args.part < 1:
            parser.error('explore: --part counts from 1')
        return {'stop': True} if args.stop else {'path': args.path, **({'part': args.part} if args.part > 1 else {})}
    return {}


def send(socket_path: str, command: str, args: Dict[str, Any]) -> Dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(TIMEOUT_S)
        try:
            connection.connect(socket_path)
        except FileNotFoundError:
            raise ServiceDown(f'the pytarchive service is not running (no socket at {socket_path})') from None
        except ConnectionRefusedError:
            raise ServiceDown(f'the pytarchive service is not running (nothing answers on {socket_path})') from None
        except PermissionError:
            raise Refused(
                f'permission denied on {socket_path}: pytarchive commands need root (read-only ones '
                f'also work for the group in [Service] read_only_group)'
            ) from None
        except OSError as exc:
            raise ServiceDown(f'cannot connect to the pytarchive service at {socket_path}: {exc.strerror}') from None
        try:
            return request(connection, command, args)
        except socket.timeout:
            raise ToolError(f'the pytarchive service did not answer within {TIMEOUT_S:g} s') from None
        except OSError as exc:
            raise ToolError(f'lost the connection to the pytarchive service: {exc.strerror or exc}') from None


def main(argv: Optional[List[str]] = None) -> int:
    """The client's command line; a failure raises a ToolError (common.errors.run_main prints it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    payload = build_request(parser, args)
    socket_path = getattr(args, 'socket', None) or configuration.socket_path_for_client(getattr(args, 'config', None))
    output, task_id = _call(socket_path, args.command, payload)
    if task_id is not None and (args.command == 'inventory' or getattr(args, 'wait', False)):
        if args.command != 'inventory':
            print(output, flush=True)
        return follow(socket_path, task_id)
    print(output if isinstance(output, str) else json.dumps(output, indent=2))
    return 0


def _call(socket_path: str, command: str, payload: Dict[str, Any]) -> Tuple[Any, Optional[int]]:
    """(output, id of the task it queued or None); a refusal raises Refused or TaskFailed."""
    reply = send(socket_path, command, payload)
    if not reply['ok']:
        error = Refused if reply.get('code') == 'refused' else TaskFailed
        raise error(str(reply.get('error') or 'the service refused without saying why'))
    return reply.get('output'), reply.get('task')


def follow(socket_path: str, task_id: int) -> int:
    """Wait for the task to end, showing its progress on a terminal; print its result, or fail with its error."""
    shown = ''
    try:
        while True:
            task = Task(**_call(socket_path, 'task', {'id': task_id})[0])
            if task.state in ENDED:
                break
            if sys.stderr.isatty():
                line = f'task {task.id} {task.kind}: {task.state} {progress_text(task)}'
                sys.stderr.write('\r' + line.ljust(len(shown)))
                sys.stderr.flush()
                shown = line
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        sys.stderr.write(f'\nstopped waiting; task {task_id} goes on in the service (see `pytarchive queue`)\n')
        return INTERRUPTED
    finally:
        if shown:
            sys.stderr.write('\n')
    if task.state != DONE:
        raise TaskFailed(f'task {task.id} {task.kind} {task.state}: {task.error}')
    if task.result:
        print(task.result)
    return 0
