"""The service's commands: check a request's arguments, then read state or queue a task.

Everything that touches the library or takes long becomes a task (scan, format, check, prepare,
archive, restore, explore, inventory, verify, import); the rest answers from the database. Each handler returns
what the client prints: text, or data when --json asked for it; a queued task comes back as
Queued, so the client can wait for it.
"""

import datetime as dt
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from common.errors import ToolError
from pytarchive import checks
from pytarchive.client import render
from pytarchive.client.protocol import ENDED, QUEUED, RUNNING, Task
from pytarchive.config import Config
from pytarchive.resources import DriveResources
from pytarchive.state import catalog, folders, parts, tapes
from pytarchive.state.db import Database
from pytarchive.taskqueue import QueueApi


@dataclass(frozen=True)
class Queued:
    task: Task
    text: str


class BadRequest(ToolError):
    pass


DEFAULT_LIMIT = 1000  # entries find and ls show unless --limit says otherwise
FINISHED_SHOWN = 20  # finished tasks `pytarchive queue` shows, newest last; --all shows every one


def _flag(args: Dict[str, Any], name: str) -> bool:
    value = args.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f'"{name}" must be true or false')
    return value


def _barcode(args: Dict[str, Any]) -> str:
    return checks.barcode(args.get('barcode'))


def _full_path(args: Dict[str, Any], name: str = 'path') -> str:
    return checks.full_path(args.get(name))


def _task_ids(wanted: Any, command: str, alternative: str = '') -> List[int]:
    if (
        not isinstance(wanted, list)
        or not wanted
        or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in wanted)
    ):
        raise BadRequest(f'{command} needs task ids (positive whole numbers){alternative}')
    return wanted


def _limit(args: Dict[str, Any]) -> int:
    value = args.get('limit', DEFAULT_LIMIT)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1_000_000:
        raise BadRequest('"limit" must be a whole number from 1 to 1000000')
    return value


def _text(args: Dict[str, Any], name: str) -> str:
    value = args.get(name, '')
    if not isinstance(value, str):
        raise BadRequest(f'"{name}" must be text')
    return value


def _queued(task: Task) -> Queued:
    arguments = render.arguments_text(task.args)
    return Queued(task, f'queued task {task.id}: {task.kind}{" " + arguments if arguments else ""}')


class Commands:
    def __init__(
        self,
        api: QueueApi,
        db: Database,
        config: Optional[Config] = None,
        resources: Sequence[DriveResources] = (),
    ):
        """resources: one per drive (none in tests that need no library)."""
        self.api = api
        self.db = db
        self.config = config
        self.resources = list(resources)
        self._handlers: Dict[str, Callable[[Dict[str, Any]], Any]] = {
            'queue': self.queue,
            'task': self.task,
            'summary': self.summary,
            'deleteable': self.deleteable,
            'requeue': self.requeue,
            'cancel': self.cancel,
            'find': self.find,
            'verify': self.verify,
            'ls': self.ls,
            'history': self.history,
            'scan': self.scan,
            'format': self.format,
            'check': self.check,
            'prepare': self.prepare,
            'archive': self.archive,
            'copy': self.copy,
            'restore': self.restore,
            'explore': self.explore,
            'inventory': self.inventory,
            'import': self.tape_import,
        }

    def handle(self, command: str, args: Dict[str, Any]) -> Any:
        handler = self._handlers.get(command)
        if handler is None:
            raise BadRequest(f'unknown command {command!r} (known: {", ".join(sorted(self._handlers))})')
        return handler(args)

    def queue(self, args: Dict[str, Any]) -> Any:
        """Running and queued tasks and the last finished ones (younger than [Service] queue_days,
        at most FINISHED_SHOWN); --all: every task; an id: that task whole."""
        task_id = args.get('id')
        if task_id is not None:
            task = self.api.storage.get(task_id) if isinstance(task_id, int) and not isinstance(task_id, bool) else None
            if task is None:
                raise BadRequest(f'no task {task_id!r} (see `pytarchive queue --all`)')
            return task.as_dict() if _flag(args, 'json') else render.task_text(task)
        tasks = self.api.tasks()
        shown = tasks if _flag(args, 'all') else self._recent(tasks)
        if _flag(args, 'json'):
            return [task.as_dict() for task in shown]
        return render.queue_table(shown, hidden=len(tasks) - len(shown))

    def _recent(self, tasks: List[Task]) -> List[Task]:
        days = self.config.service.queue_days if self.config is not None else 7
        since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).isoformat()
        finished = [t for t in tasks if t.state in ENDED and (t.finished or t.created) >= since]
        keep = {t.id for t in finished[-FINISHED_SHOWN:]} | {t.id for t in tasks if t.state not in ENDED}
        return [t for t in tasks if t.id in keep]

    def task(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """One task as data: what `--wait` polls."""
        task_id = args.get('id')
        task = self.api.storage.get(task_id) if isinstance(task_id, int) else None
        if task is None:
            raise BadRequest(f'no task {task_id!r}')
        return task.as_dict()

    def summary(self, args: Dict[str, Any]) -> Any:
        on_tape = folders.per_tape(self.db)
        tape_rows = [
            {**tape, 'free': _free(tape), **on_tape.get(tape['barcode'], {'folders': 0, 'bytes': 0})}
            for tape in tapes.list_tapes(self.db)
        ]
        tasks = self.api.tasks()
        running = {task.drive: task for task in tasks if task.state == RUNNING}
        by_id = {task.id: task for task in running.values()}
        drives = []
        for resources in self.resources:
            state = resources.drive_state()
            # A drive lent to a copy running on another drive shows that task.
            task = running.get(resources.index) or by_id.get(state['lent_to'])
            drives.append({**state, 'task': _running_task(task)})
        queue_counts = dict(sorted(Counter(task.state for task in tasks).items()))
        folder_counts = {
            row['state']: row['count']
            for row in self.db.query(
                'SELECT state, COUNT(*) AS count FROM folders WHERE copy_of IS NULL GROUP BY state ORDER BY state'
            )
        }
        copies = {
            'wanted': self._copies,
            'further': folders.further_copies(self.db),
            'short': folders.short_of_copies(self.db, self._copies),
        }
        if _flag(args, 'json'):
            return {
                'tapes': tape_rows,
                'drives': drives,
                'queue': queue_counts,
                'folders': folder_counts,
                'copies': copies,
            }
        return render.summary_text(tape_rows, drives, queue_counts, folder_counts, copies)

    def deleteable(self, args: Dict[str, Any]) -> Any:
        rows = folders.deleteable(self.db, self._copies)
        if _flag(args, 'json'):
            return rows
        return render.deleteable_table(rows, self._copies)

    def requeue(self, args: Dict[str, Any]) -> str:
        if _flag(args, 'all'):
            ids = self.api.requeue_all()
            if not ids:
                return 'no failed or interrupted tasks to requeue'
        else:
            ids = self.api.requeue(_task_ids(args.get('ids'), 'requeue', ' or "all"'))
        return f'requeued task{"s" if len(ids) > 1 else ""} {", ".join(map(str, ids))}'

    def cancel(self, args: Dict[str, Any]) -> str:
        wanted = _task_ids(args.get('ids'), 'cancel')
        exploring = [t.id for t in self.api.storage.list((RUNNING,)) if t.kind == 'explore' and t.id in wanted]
        if exploring:
            raise BadRequest(f'task {exploring[0]} is an explore: end it with `pytarchive explore --stop`')
        states = self.api.cancel(wanted, '`pytarchive cancel`')
        parts = [
            f'task {task_id} cancelled (it never ran)'
            if state == QUEUED
            else f'task {task_id} stops at its next checkpoint and ends cancelled (the drive is emptied)'
            for task_id, state in sorted(states.items())
        ]
        return '; '.join(parts)

    def find(self, args: Dict[str, Any]) -> Any:
        pattern = _text(args, 'pattern')
        if not pattern.strip():
            raise BadRequest('find needs a pattern: a part of a path, or a glob such as */raw/*.tif')
        limit = _limit(args)
        found, more = catalog.find(self.db, pattern, limit)
        if _flag(args, 'json'):
            return {'entries': found, 'more': more}
        return render.find_table(found, more, limit)

    def ls(self, args: Dict[str, Any]) -> Any:
        """What a tape holds (its folders), or what an archived folder holds (its entries)."""
        target, limit = _text(args, 'target'), _limit(args)
        if not target.startswith('/'):
            barcode = checks.barcode(target)
            held = catalog.on_tape(self.db, barcode)
            if not held and all(tape['barcode'] != barcode for tape in tapes.list_tapes(self.db)):
                raise BadRequest(f'{barcode}: no such tape in the catalog (`pytarchive summary` lists them)')
            return held if _flag(args, 'json') else render.tape_contents(barcode, held)
        path = checks.full_path(target)
        folder = catalog.newest_with_tape(self.db, path)
        if folder is None:
            raise BadRequest(f'{path} has no archive in the catalog (see `pytarchive history {path}`)')
        under = checks.clean_subpath(_text(args, 'subpath'))
        entries, total = catalog.contents(self.db, folder['id'], under, limit)
        if under and not total:
            raise BadRequest(f'{under} is not in the archive of {path}')
        if _flag(args, 'json'):
            return {'folder': folder, 'entries': entries, 'total': total}
        return render.folder_contents(folder, entries, total)

    def history(self, args: Dict[str, Any]) -> Any:
        path = _full_path(args)
        records = catalog.history(self.db, path)
        if not records:
            raise BadRequest(f'{path} was never prepared or archived')
        return records if _flag(args, 'json') else render.history_table(records)

    def verify(self, args: Dict[str, Any]) -> Queued:
        """Fixity: a tape's archives, or the newest archive of a folder, re-read against their checksums."""
        target = _text(args, 'target')
        if target.startswith('/'):
            folder = checks.archived_folder(self.db, checks.full_path(target))
            return _queued(self.api.submit('verify', barcode=folder['tape'], path=folder['path']))
        barcode = self._tape({'barcode': target})
        if not folders.archived_on(self.db, barcode) and not parts.on_tape(self.db, barcode):
            raise BadRequest(f'{barcode} holds no archived folder to verify')
        return _queued(self.api.submit('verify', barcode=barcode))

    def queue_due_fixity(self, days: int) -> List[int]:
        """Queue a verify of every tape due ([General] verify_every_days); -> the task ids queued."""
        pending = {t.args.get('barcode') for t in self.api.storage.list((QUEUED, RUNNING)) if t.kind == 'verify'}
        return [self.api.submit('verify', barcode=b).id for b in tapes.fixity_due(self.db, days) if b not in pending]

    def scan(self, args: Dict[str, Any]) -> Queued:
        return _queued(self.api.submit('scan'))

    def format(self, args: Dict[str, Any]) -> Queued:
        return _queued(self.api.submit('format', barcode=self._tape(args)))

    def check(self, args: Dict[str, Any]) -> Queued:
        return _queued(self.api.submit('check', barcode=self._tape(args)))

    def tape_import(self, args: Dict[str, Any]) -> Queued:
        """Rebuild a tape's catalog entries from the description on the tape (after a lost catalog)."""
        return _queued(self.api.submit('import', barcode=self._tape(args)))

    def _tape(self, args: Dict[str, Any]) -> str:
        """The barcode of a tape the library holds: one it does not is refused now, not by a task
        that fails later. Known from the last scan or task; otherwise the library is asked, when
        no task is queued or running (a busy library is left to the task, which checks again)."""
        barcode = _barcode(args)
        if tapes.home_slot(self.db, barcode) is not None or not self.resources:
            return barcode
        if self.api.storage.list((QUEUED, RUNNING)):
            return barcode
        try:
            status = self.resources[0].changer.status()  # one changer, shared by every drive
        except ToolError:
            return barcode  # the task says what the library says
        if not status.holders(barcode):
            held = sorted({tape.barcode for tape in status.tapes()})
            raise BadRequest(
                f'{barcode} is not in the library (it holds {", ".join(held) or "no labelled tape"}): '
                'put the tape in a slot, or check the barcode'
            )
        return barcode

    def prepare(self, args: Dict[str, Any]) -> Queued:
        path = checks.existing_folder(args.get('path'))
        archiving = self._pending('archive', path)
        if archiving:
            raise BadRequest(f'task {archiving.id} archives {path}: prepare it again after that task ends')
        return _queued(self.api.submit('prepare', path=path, description=_text(args, 'description')))

    def archive(self, args: Dict[str, Any]) -> Queued:
        """BARCODE, or BARCODE,BARCODE,... for a folder larger than a tape (archived in parts)."""
        path = _full_path(args)
        listed = args.get('barcode')
        named = [item.strip() for item in listed.split(',')] if isinstance(listed, str) else [listed]
        barcodes = [self._tape({'barcode': item}) for item in named]
        if len(set(barcodes)) < len(barcodes):
            raise BadRequest(f'{listed}: a tape is named twice (each part of a folder goes to another tape)')
        barcode, more = barcodes[0], barcodes[1:]
        newest = folders.latest(self.db, path, (folders.PREPARED, folders.ARCHIVING, folders.FAILED, folders.ARCHIVED))
        prepared = newest if newest is not None and newest['state'] != folders.ARCHIVED else None
        if prepared is None and not self._pending('prepare', path):
            if newest is not None:  # "prepare first" would read as "archive it again": say what is there
                raise BadRequest(
                    f'{path} is already archived to {newest["tape"]} (since {newest["archived"]}): '
                    f'prepare it again to archive another copy'
                )
            raise BadRequest(f'{path} is not prepared: run `pytarchive prepare {path} "description"` first')
        if prepared is not None and not prepared['packed'] and not os.path.isdir(path):
            raise BadRequest(f'{path}: no such folder any more (it was prepared; archive copies from it)')
        if more and prepared is not None and prepared['packed']:
            raise BadRequest(
                f'{path} was packed into one tar.zst, which goes whole onto one tape: name one tape, or prepare it '
                f'with a [General] pack_threshold above its {prepared["file_count"]} files to archive it in parts'
            )
        extra = {'more_tapes': more} if more else {}
        return _queued(self.api.submit('archive', path=path, barcode=barcode, **extra))

    def copy(self, args: Dict[str, Any]) -> Queued:
        """A further copy of an archived folder (or of one whose archive is queued) on another tape."""
        path, barcode = _full_path(args), self._tape(args)
        pending = [
            t for t in self.api.storage.list((QUEUED, RUNNING)) if t.kind == 'copy' and t.args.get('path') == path
        ]
        if any(t.args.get('barcode') == barcode for t in pending):
            raise BadRequest(f'a copy of {path} to {barcode} is already queued (see `pytarchive queue`)')
        if not self._pending('archive', path):
            first = checks.copyable_folder(self.db, path)
            for held in folders.family(self.db, first['id']):
                if held['tape'] == barcode:
                    raise BadRequest(
                        f'{barcode} already holds copy {held["copy_number"]} of {path}: a copy goes to another tape'
                    )
        return _queued(self.api.submit('copy', path=path, barcode=barcode, from_tape=_flag(args, 'from_tape')))

    @property
    def _copies(self) -> int:
        return self.config.general.copies if self.config is not None else 1

    def restore(self, args: Dict[str, Any]) -> Queued:
        path = _full_path(args)
        to = _full_path(args, 'to') if args.get('to') is not None else None
        if to is not None and os.path.lexists(to) and not os.path.isdir(to):
            raise BadRequest(f'--to {to}: not a folder (restore writes into a folder, made if missing)')
        only = _text(args, 'only')
        if only.startswith('/'):
            # The path as the admin sees it on disk, inside the folder: taken as the part inside it.
            inside = os.path.normpath(only)
            if inside != path and not inside.startswith(path.rstrip('/') + '/'):
                raise BadRequest(f'--only {only}: not inside {path} (give a path inside it, or relative to it)')
            only = os.path.relpath(inside, path) if inside != path else ''
        only = checks.clean_subpath(only)
        force = _flag(args, 'force')
        if not self._pending('archive', path):
            checks.archived_folder(self.db, path)
        return _queued(self.api.submit('restore', path=path, to=to, only=only, force=force))

    def explore(self, args: Dict[str, Any]) -> Any:
        if _flag(args, 'stop'):
            return self._stop_explore()
        path = _full_path(args)
        checks.export_target(self.config.export, '/')  # [Export] to must be set
        part = args.get('part', 1)
        if not isinstance(part, int) or isinstance(part, bool) or part < 1:
            raise BadRequest('"part" must be a whole number from 1')
        if not self._pending('archive', path):
            held = parts.of(self.db, checks.archived_folder(self.db, path)['id'])
            if part > max(len(held), 1):
                raise BadRequest(
                    f'{path} was archived in {len(held)} parts: --part 1 to {len(held)}'
                    if held
                    else f'{path} was archived whole to one tape: it has no part {part}'
                )
        return _queued(self.api.submit('explore', path=path, **({'part': part} if part > 1 else {})))

    def _stop_explore(self) -> str:
        running = [task for task in self.api.storage.list((RUNNING,)) if task.kind == 'explore']
        if not running:
            return 'nothing is being explored'
        # Every explore running, on whichever drive has it (one per tape, so possibly several).
        ending = [resources for resources in self.resources if resources.index in {task.drive for task in running}]
        for resources in ending:
            resources.end_explore.set()
        ids = ', '.join(str(task.id) for task in running)
        return f'ending explore (task {ids}): unexporting, unmounting, tape back to its slot'

    def inventory(self, args: Dict[str, Any]) -> Queued:
        if not self.config.general.source_folders:
            raise BadRequest(f'{self.config.path}: [General] source_folders is not set: nothing to survey')
        return _queued(self.api.submit('inventory', json=_flag(args, 'json')))

    def _pending(self, kind: str, path: str) -> Optional[Task]:
        """A queued or running task of this kind for this path (so `prepare X; archive X` can be queued at once)."""
        for task in self.api.storage.list((QUEUED, RUNNING)):
            if task.kind == kind and task.args.get('path') == path:
                return task
        return None


def _running_task(task: Optional[Task]) -> Optional[Dict[str, Any]]:
    """What the summary says of the task a drive runs: its id, kind and arguments."""
    return {'id': task.id, 'kind': task.kind, 'args': task.args} if task is not None else None


def _free(tape: Dict[str, Any]) -> Optional[int]:
    if tape['capacity'] is None or tape['used'] is None:
        return None
    return tape['capacity'] - tape['used']
