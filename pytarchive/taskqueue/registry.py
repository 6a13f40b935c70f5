"""Task kinds and their handlers: a Registry is built from an explicit list of (kind, handler).

A handler is `def handler(ctx, **args) -> Optional[str]`: `ctx` is the TaskContext (drive,
changer, progress, checkpoints), `args` the task's stored JSON arguments, the return value a
one-line result shown by `pytarchive queue`. Handlers must be safe to run again after a crash.
The list is given whole when the registry is made (pytarchive.tasks makes the service's), so a
kind is known because it is listed there, never because some module happened to be imported.

With several drives, `claims` says what a task needs to itself: the tape its `barcode` argument
names, the tapes its `tapes_needed(db, **args)` function (listed as a third item) finds in the catalog (a
restore's tape, known from its path), and its `path`. The consumer never runs two tasks sharing a
claim at once, so no two drives are asked for one tape and the tasks of one folder keep their
queue order (`prepare X; archive X` queued together still run one after the other).
"""

import inspect
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence

from common.errors import ToolError
from pytarchive.client.protocol import Task

Handler = Callable[..., Any]
Tapes = Callable[..., Iterable[str]]  # tapes_needed(db, **args): the barcodes a task will load


class UnknownTask(ToolError):
    """A kind no handler is registered for, or arguments its handler does not take."""


class Registry:
    def __init__(self, kinds: Iterable[Sequence[Any]]):
        """kinds: (kind, handler) or (kind, handler, tapes)."""
        self._handlers: Dict[str, Handler] = {}
        self._tapes: Dict[str, Optional[Tapes]] = {}
        for kind, handler, *tapes in kinds:
            if kind in self._handlers:
                raise ValueError(f'task kind {kind!r} registered twice')
            self._handlers[kind] = handler
            self._tapes[kind] = tapes[0] if tapes else None

    def handler(self, kind: str) -> Handler:
        try:
            return self._handlers[kind]
        except KeyError:
            raise UnknownTask(f'unknown task kind {kind!r} (known: {", ".join(self.kinds())})') from None

    def check_args(self, kind: str, args: Dict[str, Any]) -> None:
        """Refuse arguments the handler would not accept, before the task is stored."""
        try:
            inspect.signature(self.handler(kind)).bind(None, **args)
        except TypeError as exc:
            raise UnknownTask(f'task {kind}: {exc}') from None

    def kinds(self) -> List[str]:
        return sorted(self._handlers)

    def claims(self, db: Any, task: Task) -> FrozenSet[str]:
        """What the task needs to itself while it runs: 'tape:BARCODE' for each tape, 'path:PATH'."""
        barcodes = {task.args['barcode']} if task.args.get('barcode') else set()
        finder = self._tapes.get(task.kind)
        if finder is not None:
            try:
                barcodes.update(finder(db, **task.args))
            except ToolError:
                pass  # e.g. no archive of the path (yet): the handler says so when it runs
        found = {f'tape:{barcode.upper()}' for barcode in barcodes}
        if task.args.get('path'):
            found.add(f'path:{task.args["path"]}')
        return frozenset(found)
