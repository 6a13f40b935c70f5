"""Task kinds and their handlers: a Registry is built from an explicit list of (kind, handler).

A handler is `def handler(ctx, **args) -> Optional[str]`: `ctx` is the TaskContext (drive,
changer, progress, checkpoints), `args` the task's stored JSON arguments, the return value a
one-line result shown by `pytarchive queue`. Handlers must be safe to run again after a crash.
The list is given whole when the registry is made (pytarchive.tasks makes the service's), so a
kind is known because it is listed there, never because some module happened to be imported.
"""

import inspect
from typing import Any, Callable, Dict, Iterable, List, Tuple

from common.errors import ToolError

Handler = Callable[..., Any]


class UnknownTask(ToolError):
    """A kind no handler is registered for, or arguments its handler does not take."""


class Registry:
    def __init__(self, kinds: Iterable[Tuple[str, Handler]]):
        self._handlers: Dict[str, Handler] = {}
        for kind, handler in kinds:
            if kind in self._handlers:
                raise ValueError(f'task kind {kind!r} registered twice')
            self._handlers[kind] = handler

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
