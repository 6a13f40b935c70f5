"""The service's commands: check a request's arguments, then read state or queue a task.

Everything that touches the library becomes a task (scan, format, check); the rest answers from
the database. Each handler returns what the client prints: text, or data when --json asked for it.
"""

import re
from collections import Counter
from typing import Any, Callable, Dict

from common.errors import ToolError
from pytarchive import render, tapes
from pytarchive.db import Database
from pytarchive.library.status import is_cleaning_tape
from pytarchive.queue import QueueApi, Task

# May also be run by members of [Service] read_only_group; every other command needs root.
READ_ONLY = frozenset({'queue', 'summary', 'deleteable'})
_BARCODE = re.compile(r'[A-Z0-9]{6,16}')


class BadRequest(ToolError):
    pass


def _flag(args: Dict[str, Any], name: str) -> bool:
    value = args.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f'"{name}" must be true or false')
    return value


def _barcode(args: Dict[str, Any]) -> str:
    value = args.get('barcode')
    if not isinstance(value, str) or not _BARCODE.fullmatch(value.strip().upper()):
        raise BadRequest(f'{value!r} is not a tape barcode (6 to 16 letters and digits, e.g. TPN001L9)')
    barcode = value.strip().upper()
    if is_cleaning_tape(barcode):
        raise BadRequest(f'{barcode} is a cleaning tape: pytarchive never uses cleaning tapes for data')
    return barcode


def _queued(task: Task) -> str:
    arguments = ' '.join(str(value) for value in task.args.values())
    return f'queued task {task.id}: {task.kind}{" " + arguments if arguments else ""}'


class Commands:
    def __init__(self, api: QueueApi, db: Database):
        self.api = api
        self.db = db
        self._handlers: Dict[str, Callable[[Dict[str, Any]], Any]] = {
            'queue': self.queue,
            'summary': self.summary,
            'requeue': self.requeue,
            'scan': self.scan,
            'format': self.format,
            'check': self.check,
        }

    def handle(self, command: str, args: Dict[str, Any]) -> Any:
        handler = self._handlers.get(command)
        if handler is None:
            raise BadRequest(f'unknown command {command!r} (known: {", ".join(sorted(self._handlers))})')
        return handler(args)

    def queue(self, args: Dict[str, Any]) -> Any:
        tasks = self.api.tasks()
        if _flag(args, 'json'):
            return [task.as_dict() for task in tasks]
        return render.queue_table(tasks)

    def summary(self, args: Dict[str, Any]) -> Any:
        tape_rows = tapes.list_tapes(self.db)
        queue_counts = dict(sorted(Counter(task.state for task in self.api.tasks()).items()))
        folder_counts = {row['state']: row['count'] for row in self.db.query(
            'SELECT state, COUNT(*) AS count FROM folders GROUP BY state ORDER BY state')}
        if _flag(args, 'json'):
            return {'tapes': tape_rows, 'queue': queue_counts, 'folders': folder_counts}
        return render.summary_text(tape_rows, queue_counts, folder_counts)

    def requeue(self, args: Dict[str, Any]) -> str:
        if _flag(args, 'all'):
            ids = self.api.requeue_all()
            if not ids:
                return 'no failed or interrupted tasks to requeue'
        else:
            wanted = args.get('ids')
            if (not isinstance(wanted, list) or not wanted
                    or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in wanted)):
                raise BadRequest('requeue needs task ids (positive whole numbers) or "all"')
            ids = self.api.requeue(wanted)
        return f'requeued task{"s" if len(ids) > 1 else ""} {", ".join(map(str, ids))}'

    def scan(self, args: Dict[str, Any]) -> str:
        return _queued(self.api.submit('scan'))

    def format(self, args: Dict[str, Any]) -> str:
        return _queued(self.api.submit('format', barcode=_barcode(args)))

    def check(self, args: Dict[str, Any]) -> str:
        return _queued(self.api.submit('check', barcode=_barcode(args)))
