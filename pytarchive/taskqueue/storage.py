"""The task queue's persistent half: every task is a row, every state change one transaction.

States: queued -> running -> done | failed | interrupted | cancelled (a queued task may be cancelled too). A task found 'running' when the service
starts was cut short by a dead service: it becomes 'interrupted' and waits for `requeue`, because
only the admin knows whether whatever killed the service is fixed. Ids come from AUTOINCREMENT and
are never reused, so the id an admin noted before a restart still names the same task.
"""

import json
import sqlite3
from typing import Any, Callable, Dict, Iterable, List, Optional

from common.errors import ToolError
from pytarchive.client.protocol import CANCELLED, DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, Task
from pytarchive.state.db import Database, now

REQUEUEABLE = (FAILED, INTERRUPTED, CANCELLED)


def _task(row: Any) -> Task:
    values = dict(row)
    values['args'] = json.loads(values['args'])
    return Task(**values)


class RequeueError(ToolError):
    pass


class TaskStorage:
    def __init__(self, db: Database):
        self.db = db

    def enqueue(self, kind: str, args: Dict[str, Any]) -> Task:
        with self.db.transaction() as conn:
            cursor = conn.execute(
                'INSERT INTO tasks (kind, args, state, created) VALUES (?, ?, ?, ?)',
                (kind, json.dumps(args, sort_keys=True), QUEUED, now()),
            )
            task_id = cursor.lastrowid
        return self.get(task_id)

    def get(self, task_id: int) -> Optional[Task]:
        rows = self.db.query('SELECT * FROM tasks WHERE id = ?', (task_id,))
        return _task(rows[0]) if rows else None

    def list(self, states: Optional[Iterable[str]] = None) -> List[Task]:
        if states is None:
            rows = self.db.query('SELECT * FROM tasks ORDER BY id')
        else:
            wanted = list(states)
            marks = ', '.join('?' * len(wanted))
            rows = self.db.query(f'SELECT * FROM tasks WHERE state IN ({marks}) ORDER BY id', wanted)
        return [_task(row) for row in rows]

    def claim_next(
        self, drive: Optional[int] = None, runnable: Callable[[Task], bool] = lambda task: True
    ) -> Optional[Task]:
        """The oldest queued task that runnable(task) accepts, now marked running on `drive`; None
        when there is none. One transaction: a cancel or another claim cannot come in between."""
        with self.db.transaction() as conn:
            rows = conn.execute('SELECT * FROM tasks WHERE state = ? ORDER BY id', (QUEUED,)).fetchall()
            chosen = next((task for task in map(_task, rows) if runnable(task)), None)
            if chosen is None:
                return None
            conn.execute(
                'UPDATE tasks SET state = ?, started = ?, finished = NULL, attempts = attempts + 1, drive = ? '
                'WHERE id = ?',
                (RUNNING, now(), drive, chosen.id),
            )
        return self.get(chosen.id)

    def _finish(self, task_id: int, state: str, error: Optional[str], result: Optional[str]) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                'UPDATE tasks SET state = ?, error = ?, result = ?, finished = ? WHERE id = ? AND state = ?',
                (state, error, result, now(), task_id, RUNNING),
            )

    def mark_done(self, task_id: int, result: Optional[str] = None) -> None:
        self._finish(task_id, DONE, None, result)

    def mark_failed(self, task_id: int, error: str) -> None:
        self._finish(task_id, FAILED, error, None)

    def mark_interrupted(self, task_id: int, reason: str) -> None:
        self._finish(task_id, INTERRUPTED, reason, None)

    def mark_cancelled(self, task_id: int, reason: str) -> None:
        self._finish(task_id, CANCELLED, reason, None)

    def cancel(self, task_ids: Iterable[int], by: str) -> Dict[int, str]:
        """Cancel these tasks, all or none (RequeueError): a queued one at once, here, in the same
        transaction a worker's claim takes, so it never runs; a running one is only reported
        (id -> 'running'): its worker stops it at its next checkpoint. -> id -> state it had."""
        wanted = sorted(set(task_ids))
        with self.db.transaction() as conn:
            states, problems = {}, []
            for task_id in wanted:
                row = conn.execute('SELECT state FROM tasks WHERE id = ?', (task_id,)).fetchone()
                if row is None:
                    problems.append(f'{task_id} does not exist')
                elif row['state'] not in (QUEUED, RUNNING):
                    problems.append(f'{task_id} is {row["state"]} already')
                else:
                    states[task_id] = row['state']
            if problems:
                raise RequeueError(f'nothing cancelled: task {"; task ".join(problems)} (only queued or running tasks)')
            conn.executemany(
                'UPDATE tasks SET state = ?, error = ?, finished = ? WHERE id = ? AND state = ?',
                [
                    (CANCELLED, f'cancelled by {by} before it ran', now(), i, QUEUED)
                    for i, s in states.items()
                    if s == QUEUED
                ],
            )
        return states

    def set_progress(
        self,
        task_id: int,
        bytes_done: Optional[int] = None,
        bytes_total: Optional[int] = None,
        files_done: Optional[int] = None,
        files_total: Optional[int] = None,
        step: Optional[str] = None,
    ) -> None:
        """Update the counters (and the step) given; None leaves one as it is."""
        with self.db.transaction() as conn:
            conn.execute(
                'UPDATE tasks SET bytes_done = COALESCE(?, bytes_done), bytes_total = COALESCE(?, bytes_total), '
                'files_done = COALESCE(?, files_done), files_total = COALESCE(?, files_total), '
                'step = COALESCE(?, step) WHERE id = ?',
                (bytes_done, bytes_total, files_done, files_total, step, task_id),
            )

    def interrupt_leftovers(self) -> List[int]:
        """At service start: tasks still 'running' belonged to a service that died; mark them."""
        with self.db.transaction() as conn:
            ids = [row['id'] for row in conn.execute('SELECT id FROM tasks WHERE state = ? ORDER BY id', (RUNNING,))]
            conn.execute(
                'UPDATE tasks SET state = ?, error = ?, finished = ? WHERE state = ?',
                (INTERRUPTED, 'the service stopped while this task ran', now(), RUNNING),
            )
        return ids

    def requeue(self, task_ids: Iterable[int]) -> List[int]:
        """Put these failed or interrupted tasks back in the queue: all of them, or none (RequeueError)."""
        wanted = sorted(set(task_ids))
        with self.db.transaction() as conn:
            problems = []
            for task_id in wanted:
                row = conn.execute('SELECT state FROM tasks WHERE id = ?', (task_id,)).fetchone()
                if row is None:
                    problems.append(f'{task_id} does not exist')
                elif row['state'] not in REQUEUEABLE:
                    problems.append(f'{task_id} is {row["state"]}')
            if problems:
                raise RequeueError(
                    f'nothing requeued: task {"; task ".join(problems)} (only failed or interrupted tasks can be requeued)'
                )
            self._reset(conn, wanted)
        return wanted

    def requeue_all(self) -> List[int]:
        with self.db.transaction() as conn:
            marks = ', '.join('?' * len(REQUEUEABLE))
            ids = [
                row['id']
                for row in conn.execute(f'SELECT id FROM tasks WHERE state IN ({marks}) ORDER BY id', REQUEUEABLE)
            ]
            self._reset(conn, ids)
        return ids

    @staticmethod
    def _reset(conn: sqlite3.Connection, ids: List[int]) -> None:
        # Progress restarts from zero: the task starts over (tasks are written to be re-run).
        conn.executemany(
            'UPDATE tasks SET state = ?, error = NULL, result = NULL, started = NULL, finished = NULL, '
            'bytes_done = 0, files_done = 0, step = NULL, drive = NULL WHERE id = ?',
            [(QUEUED, task_id) for task_id in ids],
        )
