"""The task queue without a library: storage, registry, consumer, api."""

import threading
import time

import pytest

from pytarchive.client.protocol import CANCELLED, DONE, FAILED, INTERRUPTED, QUEUED, RUNNING
from pytarchive.library.errors import MtxError
from pytarchive.taskqueue import Consumer, QueueApi, Registry, RequeueError, UnknownTask


def test_tasks_are_claimed_in_id_order_and_ids_are_never_reused(db, storage):
    first = storage.enqueue('format', {'barcode': 'TPN001L9'})
    second = storage.enqueue('check', {'barcode': 'TPN001L9'})
    assert (first.id, second.id) == (1, 2)
    assert first.state == QUEUED and first.args == {'barcode': 'TPN001L9'}
    claimed = storage.claim_next()
    assert claimed.id == 1 and claimed.state == RUNNING and claimed.started and claimed.attempts == 1
    storage.mark_done(1, 'TPN001L9 formatted')
    assert storage.claim_next().id == 2
    assert storage.claim_next() is None
    with db.transaction() as conn:
        conn.execute('DELETE FROM tasks')
    assert storage.enqueue('scan', {}).id == 3


def test_progress_failure_and_interruption_are_recorded(storage):
    task = storage.enqueue('check', {'barcode': 'TPN001L9'})
    storage.claim_next()
    storage.set_progress(task.id, bytes_total=1000, files_total=3)
    storage.set_progress(task.id, bytes_done=400, files_done=1)
    now = storage.get(task.id)
    assert (now.bytes_done, now.bytes_total, now.files_done, now.files_total) == (400, 1000, 1, 3)
    storage.mark_failed(task.id, 'mtx: Drive 0 Full')
    failed = storage.get(task.id)
    assert failed.state == FAILED and failed.error == 'mtx: Drive 0 Full' and failed.finished


def test_leftover_running_tasks_become_interrupted(storage):
    storage.enqueue('scan', {})
    storage.enqueue('scan', {})
    storage.claim_next()
    assert storage.interrupt_leftovers() == [1]
    assert [(task.id, task.state) for task in storage.list()] == [(1, INTERRUPTED), (2, QUEUED)]
    assert storage.get(1).error == 'the service stopped while this task ran'


def test_requeue_takes_only_failed_or_interrupted_tasks_all_or_nothing(storage):
    for _ in range(4):
        storage.enqueue('scan', {})
    storage.claim_next()
    storage.mark_failed(1, 'boom')
    storage.claim_next()
    storage.mark_done(2)
    storage.claim_next()
    storage.interrupt_leftovers()  # 3
    storage.set_progress(1, bytes_done=50, files_done=2)
    with pytest.raises(RequeueError) as caught:
        storage.requeue([1, 2, 9])
    assert caught.value.message == (
        'nothing requeued: task 2 is done; task 9 does not exist (only failed or interrupted tasks can be requeued)'
    )
    assert storage.get(1).state == FAILED
    assert storage.requeue([3, 1]) == [1, 3]
    again = storage.get(1)
    assert (again.state, again.error, again.bytes_done, again.files_done, again.started) == (QUEUED, None, 0, 0, None)
    assert storage.claim_next().id == 1  # back in its place in the queue, before task 4


def test_requeue_all(storage):
    for _ in range(3):
        storage.enqueue('scan', {})
    storage.claim_next()
    storage.mark_failed(1, 'x')
    storage.claim_next()
    storage.mark_interrupted(2, 'stopped')
    assert storage.requeue_all() == [1, 2]
    assert [task.state for task in storage.list()] == [QUEUED] * 3
    assert storage.requeue_all() == []


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError('condition not reached')


def test_consumer_runs_tasks_one_at_a_time_in_order_and_records_the_outcome(storage):
    ran, active, overlap = [], [0], []

    def step(ctx, name):
        active[0] += 1
        overlap.append(active[0])
        time.sleep(0.02)
        ctx.progress(files_done=1, files_total=1)
        ran.append(name)
        active[0] -= 1
        return f'{name} ok'

    def mtx_fails(ctx):
        raise MtxError(
            'Drive 0 Full (Storage Element 3 loaded)',
            command=['mtx', '-f', '/dev/sch0', 'load', '3', '0'],
            sense_key='Illegal Request',
            asc='53',
            ascq='03',
            mtx_reported=True,
        )

    def bug(ctx):
        return {}['missing']

    registry = Registry([('step', step), ('mtx-fails', mtx_fails), ('bug', bug)])
    consumer = Consumer(storage, registry, ['drive-0'])
    api = QueueApi(storage, registry, consumer)
    consumer.start()
    try:
        for name in 'abc':
            api.submit('step', name=name)
        api.submit('mtx-fails')
        api.submit('bug')
        _wait_for(lambda: all(task.state in (DONE, FAILED) for task in storage.list()))
    finally:
        consumer.stop()
    assert ran == ['a', 'b', 'c'] and max(overlap) == 1
    tasks = storage.list()
    assert [(task.state, task.result) for task in tasks[:3]] == [(DONE, 'a ok'), (DONE, 'b ok'), (DONE, 'c ok')]
    assert tasks[0].files_done == 1
    assert tasks[3].state == FAILED
    assert tasks[3].error.startswith(
        'mtx -f /dev/sch0 load 3 0: Drive 0 Full (Storage Element 3 loaded) '
        '(Sense Key=Illegal Request, ASC=53, ASCQ=03)'
    )
    assert 'do not power-cycle' in tasks[3].error
    assert tasks[4].error == "unexpected KeyError: 'missing'"


def _checkpointing_queue(storage, started, cleaned_up):
    """A started consumer of 'long' tasks that loop on checkpoints; started[id] is set when task id
    runs, cleaned_up gets the ids that unwound."""

    def long(ctx):
        started[ctx.task.id].set()
        try:
            while True:
                ctx.checkpoint()
                time.sleep(0.01)
        finally:
            cleaned_up.append(ctx.task.id)

    registry = Registry([('long', long)])
    consumer = Consumer(storage, registry, ['drive-0'])
    consumer.start()
    return consumer, QueueApi(storage, registry, consumer)


def test_stopping_interrupts_a_task_at_its_next_checkpoint_and_takes_no_new_one(storage):
    started = {n: threading.Event() for n in (1, 2)}
    cleaned_up = []
    consumer, api = _checkpointing_queue(storage, started, cleaned_up)
    api.submit('long')
    api.submit('long')
    assert started[1].wait(5)
    consumer.stop()
    assert [(task.state, task.error) for task in storage.list()] == [
        (INTERRUPTED, 'the service was stopped before this task finished'),
        (QUEUED, None),
    ]
    assert cleaned_up == [1]


def test_a_cancelled_queued_task_never_runs_and_a_running_one_stops_at_its_checkpoint(storage):
    started = {n: threading.Event() for n in (1, 2, 3)}
    cleaned_up = []
    consumer, api = _checkpointing_queue(storage, started, cleaned_up)
    try:
        api.submit('long')
        api.submit('long')
        api.submit('long')
        assert started[1].wait(30)
        assert api.cancel([1, 3], 'the test') == {1: RUNNING, 3: QUEUED}
        _wait_for(lambda: storage.get(1).state == CANCELLED)
        assert started[2].wait(30)  # the worker went on with task 2, never task 3
        assert storage.get(3).state == CANCELLED and storage.get(3).started is None
        with pytest.raises(RequeueError, match='nothing cancelled: task 1 is cancelled already; task 9 does not'):
            api.cancel([1, 9], 'the test')
        api.cancel([2], 'the test')
        _wait_for(lambda: storage.get(2).state == CANCELLED)
    finally:
        consumer.stop()
    assert storage.get(1).error.startswith('cancelled by the test while it ran; stopped at a checkpoint')
    assert storage.get(3).error == 'cancelled by the test before it ran'
    assert cleaned_up == [1, 2]
    assert api.requeue([3]) == [3] and storage.get(3).state == QUEUED  # a cancelled task may run again


def test_submit_refuses_unknown_kinds_and_wrong_arguments(storage):
    def format_tape(ctx, barcode):
        return None

    registry = Registry([('format', format_tape)])
    api = QueueApi(storage, registry)
    with pytest.raises(UnknownTask, match=r"unknown task kind 'erase' \(known: format\)"):
        api.submit('erase')
    with pytest.raises(UnknownTask, match="task format: missing a required argument: 'barcode'"):
        api.submit('format')
    assert storage.list() == []
    assert api.submit('format', barcode='TPN001L9').id == 1
    with pytest.raises(ValueError, match="task kind 'format' registered twice"):
        Registry([('format', format_tape), ('scan', format_tape), ('format', format_tape)])
