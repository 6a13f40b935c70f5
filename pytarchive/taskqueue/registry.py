"""Task kinds and their handlers: `@task('format')` registers a function under a kind.

A handler is `def handler(ctx, **args) -> Optional[str]`: `ctx` is the TaskContext (drive,
changer, progress, checkpoints), `args` the task's stored JSON arguments, the return value a
one-line result shown by `pytarchive queue`. Handlers must be safe to run again after a crash.
"""

import inspect
from typing import Any, Callable, Dict, List

Handler = Callable[..., Any]


class UnknownTask(ValueError):
    pass


class Registry:
    def __init__(self) -> None:
        self._handlers: Dict[str, Handler] = {}

    def task(self, kind: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if kind in self._handlers:
                raise ValueError(f'task kind {kind!r} registered twice')
            self._handlers[kind] = handler
            return handler

        return register

    def handler(self, kind: str) -> Handler:
        try:
            return self._handlers[kind]
        except KeyError:
            raise UnknownTask(f'unknown task kind {kind!r}') from None

    def check_args(self, kind: str, args: Dict[str, Any]) -> None:
        """Refuse arguments the handler would not accept, before the task is stored."""
        try:
            inspect.signature(self.handler(kind)).bind(None, **args)
        except TypeError as exc:
            raise UnknownTask(f'task {kind}: {exc}') from None

    def kinds(self) -> List[str]:
        return sorted(self._handlers)


registry = Registry()
task = registry.task
