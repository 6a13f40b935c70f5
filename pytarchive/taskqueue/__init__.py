"""The persistent task queue, in three small parts (after huey): storage (SQLite rows), consumer
(worker threads running handlers) and api (what the service's command handlers call)."""

from pytarchive.queue.api import QueueApi
from pytarchive.queue.consumer import Consumer, TaskContext, TaskInterrupted
from pytarchive.queue.registry import Registry, UnknownTask, registry, task
from pytarchive.queue.storage import (DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, RequeueError, Task,
                                      TaskStorage)

__all__ = ['QueueApi', 'Consumer', 'TaskContext', 'TaskInterrupted', 'Registry', 'UnknownTask', 'registry',
           'task', 'DONE', 'FAILED', 'INTERRUPTED', 'QUEUED', 'RUNNING', 'RequeueError', 'Task', 'TaskStorage']
