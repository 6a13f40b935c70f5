"""The pytarchive client: send one command to the service and print its answer.

    pytarchive queue [--json]              pytarchive scan
    pytarchive requeue ID[,ID...] | --all  pytarchive format BARCODE
    pytarchive summary [--json]            pytarchive check BARCODE

Thin on purpose: the service checks the arguments, decides who may do what and renders the text.
"""

import argparse
import json
import socket
from typing import Any, Dict, List, Optional

from common.errors import FAILURE, PRIVILEGE, UNREACHABLE, ArgumentParser, ToolError
from pytarchive import config as configuration
from pytarchive.cli import run
from pytarchive.protocol import TIMEOUT_S, request

PROG = 'pytarchive'

def build_parser() -> ArgumentParser:
    # --config and --socket work before or after the command (`pytarchive queue --config X`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--config', metavar='PATH', default=argparse.SUPPRESS,
                        help=f'config file naming the socket (default {configuration.DEFAULT_PATH})')
    common.add_argument('--socket', metavar='PATH', default=argparse.SUPPRESS,
                        help='the service\'s socket, instead of reading it from the config file')
    parser = ArgumentParser(prog=PROG, parents=[common],
                            description='Send a command to the pytarchive service (tape archiving on LTFS).')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND', required=True,
                                     parser_class=ArgumentParser)
    queue = commands.add_parser('queue', parents=[common], help='list the tasks: id, kind, arguments, state, progress, age')
    queue.add_argument('--json', action='store_true', help='JSON instead of a table')
    requeue = commands.add_parser('requeue', parents=[common], help='run failed or interrupted tasks again')
    requeue.add_argument('ids', nargs='*', metavar='ID[,ID...]', help='task ids, as `pytarchive queue` shows them')
    requeue.add_argument('--all', action='store_true', help='every failed or interrupted task')
    summary = commands.add_parser('summary', parents=[common], help='the tapes, their slots, capacity and use')
    summary.add_argument('--json', action='store_true', help='JSON instead of a table')
    commands.add_parser('scan', parents=[common], help='queue a scan of the library (mtx status) into the tape list')
    for name, text in (('format', 'queue formatting a new tape with LTFS (never erases a formatted one)'),
                       ('check', 'queue reading a tape\'s capacity and free space')):
        sub = commands.add_parser(name, parents=[common], help=text)
        sub.add_argument('barcode', metavar='BARCODE', help='the tape\'s barcode, e.g. TPN001L9')
    return parser

def _task_ids(parser: ArgumentParser, words: List[str]) -> List[int]:
    ids = []
    for item in ','.join(words).split(','):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit() or int(item) == 0:
            parser.error(f'requeue: {item!r} is not a task id (a positive whole number)')
        ids.append(int(item))
    return ids

def build_request(parser: ArgumentParser, args: argparse.Namespace) -> Dict[str, Any]:
    if args.command in ('queue', 'summary'):
        return {'json': args.json}
    if args.command == 'requeue':
        ids = _task_ids(parser, args.ids)
        if args.all and ids:
            parser.error('requeue: give task ids or --all, not both')
        if not args.all and not ids:
            parser.error('requeue: which tasks? give their ids (e.g. 3,5) or --all')
        return {'all': True} if args.all else {'ids': ids}
    if args.command in ('format', 'check'):
        return {'barcode': args.barcode}
    return {}

def send(socket_path: str, command: str, args: Dict[str, Any]) -> Dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(TIMEOUT_S)
        try:
            connection.connect(socket_path)
        except FileNotFoundError:
            raise ToolError(f'the pytarchive service is not running (no socket at {socket_path})', UNREACHABLE) from None
        except ConnectionRefusedError:
            raise ToolError(f'the pytarchive service is not running (nothing answers on {socket_path})',
                            UNREACHABLE) from None
        except PermissionError:
            raise ToolError(f'permission denied on {socket_path}: pytarchive commands need root (read-only ones '
                            f'also work for the group in [Service] read_only_group)', PRIVILEGE) from None
        except OSError as exc:
            raise ToolError(f'cannot connect to the pytarchive service at {socket_path}: {exc.strerror}',
                            UNREACHABLE) from None
        try:
            return request(connection, command, args)
        except socket.timeout:
            raise ToolError(f'the pytarchive service did not answer within {TIMEOUT_S:g} s') from None
        except OSError as exc:
            raise ToolError(f'lost the connection to the pytarchive service: {exc.strerror or exc}') from None

def main(argv: Optional[List[str]] = None) -> int:
    return run(PROG, lambda: _main(argv))

def _main(argv: Optional[List[str]]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    payload = build_request(parser, args)
    socket_path = getattr(args, 'socket', None) or configuration.socket_path_for_client(getattr(args, 'config', None))
    reply = send(socket_path, args.command, payload)
    if not reply['ok']:
        code = PRIVILEGE if reply.get('code') == 'refused' else FAILURE
        raise ToolError(str(reply.get('error') or 'the service refused without saying why'), code)
    output = reply.get('output')
    print(output if isinstance(output, str) else json.dumps(output, indent=2))
    return 0
