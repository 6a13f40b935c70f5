"""The queue with several drives: one task per drive, never one tape (or one folder) on two drives at
once, and a task that must wait does not hold up later ones that can run."""

import threading
import time
from types import SimpleNamespace

import pytest

from common.errors import ToolError
from pytarchive.client.protocol import DONE, QUEUED, RUNNING
from pytarchive.taskqueue import Consumer, QueueApi, Registry

# Where the catalog would say each folder's archive lies: what a restore's tapes() finds.
ARCHIVED_ON = {'/data/a': 'TPN001L9', '/data/b': 'TPN002L9'}


def _archived_tape(db, path, **_):
    if path not in ARCHIVED_ON:
        raise ToolError(f'{path} has no verified archive')
    return [ARCHIVED_ON[path]]


class Gates:
    """Tasks that run until the test opens their gate: what runs when, on which drive."""

    def __init__(self):
        self.started = {}
        self.gates = {}

    def handler(self, ctx, **args):
        self.started[ctx.task.id] = ctx.resources.index
        gate = self.gates.setdefault(ctx.task.id, threading.Event())
        assert gate.wait(30)
        return 'ok'

    def release(self, task_id):
        self.gates.setdefault(task_id, threading.Event()).set()


@pytest.fixture
def two_drives(storage):
    gates = Gates()
    registry = Registry(
        [
            ('archive', gates.handler),
            ('check', gates.handler),
            ('prepare', gates.handler),
            ('scan', gates.handler),
            ('restore', gates.handler, _archived_tape),
        ]
    )
    consumer = Consumer(storage, registry, [SimpleNamespace(index=0), SimpleNamespace(index=4)])
    api = QueueApi(storage, registry, consumer)
    consumer.start()
    yield api, gates
    for task_id in range(1, 20):
        gates.release(task_id)
    consumer.stop()


def _states(storage):
    return {task.id: (task.state, task.drive) for task in storage.list()}


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'condition not reached'
        time.sleep(0.01)


def test_two_tasks_on_two_tapes_run_at_once_one_per_drive_and_a_third_waits(storage, two_drives):
    api, gates = two_drives
    api.submit('archive', path='/data/x', barcode='TPN001L9')
    api.submit('archive', path='/data/y', barcode='TPN002L9')
    api.submit('check', barcode='TPN003L9')
    _wait_for(lambda: len(gates.started) == 2)
    time.sleep(0.2)  # time enough for a wrong third claim
    assert _states(storage) == {1: (RUNNING, gates.started[1]), 2: (RUNNING, gates.started[2]), 3: (QUEUED, None)}
    assert {gates.started[1], gates.started[2]} == {0, 4}  # the drives' own numbers, one task each
    gates.release(2)
    _wait_for(lambda: 3 in gates.started)
    assert gates.started[3] == gates.started[2]  # the drive that became free took it


def test_a_task_needing_a_tape_in_use_waits_while_a_later_task_on_another_tape_goes_ahead(storage, two_drives):
    api, gates = two_drives
    api.submit('archive', path='/data/x', barcode='tpn001l9')  # barcodes compare without case
    _wait_for(lambda: 1 in gates.started)
    api.submit('restore', path='/data/a')  # archived on TPN001L9, which task 1 holds
    api.submit('check', barcode='TPN002L9')
    _wait_for(lambda: 3 in gates.started)
    time.sleep(0.2)
    assert _states(storage)[2] == (QUEUED, None)
    gates.release(1)
    _wait_for(lambda: 2 in gates.started)
    gates.release(2)
    gates.release(3)
    _wait_for(lambda: all(state == DONE for state, _ in _states(storage).values()))


def test_tasks_on_one_folder_keep_their_order_and_waiting_ones_keep_theirs(storage, two_drives):
    api, gates = two_drives
    api.submit('prepare', path='/data/x')
    api.submit('archive', path='/data/x', barcode='TPN001L9')  # needs the prepare done first
    api.submit('check', barcode='TPN001L9')  # behind the waiting archive on its tape, not before it
    api.submit('scan')  # names no tape and no folder: runs beside anything
    _wait_for(lambda: {1, 4} <= set(gates.started))
    time.sleep(0.2)
    assert [state for state, _ in _states(storage).values()] == [RUNNING, QUEUED, QUEUED, RUNNING]
    gates.release(4)
    gates.release(1)
    _wait_for(lambda: 2 in gates.started)
    time.sleep(0.2)
    assert _states(storage)[3] == (QUEUED, None)  # the other drive is free, but the tape is not
    gates.release(2)
    _wait_for(lambda: 3 in gates.started)


def test_claims_are_the_tapes_named_or_found_and_the_folder(db, storage):
    registry = Registry([('restore', None, _archived_tape), ('check', None), ('scan', None)])

    def claims(kind, **args):
        return registry.claims(db, storage.enqueue(kind, args))

    assert claims('restore', path='/data/a') == {'tape:TPN001L9', 'path:/data/a'}
    assert claims('restore', path='/data/none') == {'path:/data/none'}  # the task itself says what is wrong
    assert claims('check', barcode='tpn002l9') == {'tape:TPN002L9'}
    assert claims('scan') == frozenset()


def test_a_task_may_borrow_an_idle_drive_which_takes_no_task_until_it_is_given_back(storage):
    """What a copy from tape does with two drives: it reads the source tape on the other drive."""
    borrowed, gates = {}, Gates()

    def copy(ctx, **args):
        with ctx.other_drive() as other:
            borrowed[ctx.task.id] = (other.index, other.lent_to) if other is not None else None
            assert gates.gates.setdefault(ctx.task.id, threading.Event()).wait(30)
        return 'ok'

    registry = Registry([('copy', copy), ('check', gates.handler)])
    drives = [SimpleNamespace(index=0, lent_to=None), SimpleNamespace(index=4, lent_to=None)]
    consumer = Consumer(storage, registry, drives)
    api = QueueApi(storage, registry, consumer)
    consumer.start()
    try:
        api.submit('copy', path='/data/x', barcode='TPN002L9')
        _wait_for(lambda: 1 in borrowed)
        ran_on = storage.get(1).drive
        assert borrowed[1] == (({0, 4} - {ran_on}).pop(), 1)  # the other drive, marked lent to task 1
        api.submit('check', barcode='TPN003L9')
        time.sleep(0.3)  # time enough for a wrong claim by the lent drive
        assert storage.get(2).state == QUEUED
        gates.release(1)
        _wait_for(lambda: 2 in gates.started)
        assert all(drive.lent_to is None for drive in drives)  # given back
        gates.release(2)
    finally:
        gates.release(1)
        gates.release(2)
        consumer.stop()

    alone = Consumer(storage, registry, [SimpleNamespace(index=0, lent_to=None)])
    alone.start()
    try:
        api = QueueApi(storage, registry, alone)
        api.submit('copy', path='/data/y', barcode='TPN002L9')
        _wait_for(lambda: 3 in borrowed)
        assert borrowed[3] is None  # no other drive: the copy stages through scratch instead
    finally:
        gates.release(3)
        alone.stop()
