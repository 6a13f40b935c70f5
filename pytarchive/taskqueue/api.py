"""What the service's command handlers use: submit a task, list the queue, requeue."""

from typing import Any, Dict, Iterable, List, Optional

from pytarchive.taskqueue.consumer import Consumer
from pytarchive.taskqueue.registry import Registry
from pytarchive.client.protocol import RUNNING, Task
from pytarchive.taskqueue.storage import TaskStorage


class QueueApi:
    def __init__(self, storage: TaskStorage, registry: Registry, consumer: Optional[Consumer] = None):
        self.storage = storage
        self.registry = registry
        self.consumer = consumer

    def _wake(self) -> None:
        if self.consumer is not None:
            self.consumer.wake()

    def submit(self, kind: str, **args: Any) -> Task:
        self.registry.check_args(kind, args)
        queued = self.storage.enqueue(kind, args)
        self._wake()
        return queued

    def tasks(self) -> List[Task]:
        return self.storage.list()

    def requeue(self, task_ids: Iterable[int]) -> List[int]:
        ids = self.storage.requeue(task_ids)
        self._wake()
        return ids

    def cancel(self, task_ids: Iterable[int], by: str) -> Dict[int, str]:
        """Queued tasks are cancelled now; running ones stop at their next checkpoint. -> id -> state it had."""
        states = self.storage.cancel(task_ids, by)
        for task_id, state in states.items():
            if state == RUNNING and self.consumer is not None:
                self.consumer.cancel_running(task_id, by)
        return states

    def requeue_all(self) -> List[int]:
        ids = self.storage.requeue_all()
        self._wake()
        return ids
