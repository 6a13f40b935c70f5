"""The persistent task queue, in small parts (after huey): storage (SQLite rows), registry (the
kinds and their handlers), consumer (worker threads running handlers) and api (what the service's
command handlers call). Named `taskqueue` so that it never hides the standard library's `queue`."""

from pytarchive.taskqueue.api import QueueApi
from pytarchive.taskqueue.consumer import Consumer, TaskContext, TaskInterrupted
from pytarchive.taskqueue.registry import Registry, UnknownTask
from pytarchive.taskqueue.storage import RequeueError, TaskStorage

__all__ = [
    'QueueApi',
    'Consumer',
    'TaskContext',
    'TaskInterrupted',
    'Registry',
    'UnknownTask',
    'RequeueError',
    'TaskStorage',
]
