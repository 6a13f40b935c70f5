"""wormlock.schedule: files waiting to be locked, coalesced by file id, handed to workers as they
fall due."""

import threading
import time

from wormlock.schedule import Schedule


def test_schedule_coalesces_events_per_file_and_settle_restarts_the_clock():
    schedule = Schedule()
    for _ in range(100):
        schedule.touch('42', '/a/f.txt', 0.2, restart=True)
    schedule.touch('42', '/a/renamed.txt', 0.2, restart=True)
    assert len(schedule) == 1
    started = time.monotonic()
    entry = schedule.take()
    assert entry.file_id == '42' and entry.path == '/a/renamed.txt'
    assert time.monotonic() - started >= 0.15


def test_schedule_interval_keeps_the_first_due_time():
    schedule = Schedule()
    schedule.touch('7', '/f', 0.0, restart=False)
    schedule.touch('7', '/f', 30.0, restart=False)  # a later event does not postpone it
    assert schedule.take().file_id == '7'


def test_closing_the_schedule_releases_waiting_workers():
    schedule = Schedule()
    schedule.touch('1', '/f', 60.0)
    schedule.close()
    assert schedule.take() is None


def test_a_file_changed_while_being_locked_waits_for_that_worker():
    schedule = Schedule()
    schedule.touch('9', '/f', 0.0)
    first = schedule.take()
    schedule.touch('9', '/f', 0.0)  # e.g. child_data_written after child_file_added
    taken = []
    worker = threading.Thread(target=lambda: taken.append(schedule.take()))
    worker.start()
    worker.join(0.3)
    assert taken == []  # not handed to a second worker while the first one holds it
    schedule.finished(first.file_id)
    worker.join(5)
    assert taken[0].file_id == '9'


def test_a_file_due_in_the_far_future_does_not_kill_the_worker_waiting_for_it():
    # A wait longer than threading.TIMEOUT_MAX raises OverflowError: the worker would die, silently.
    schedule = Schedule()
    schedule.touch('far', '/far', 1e10)
    taken, errors = [], []

    def worker():
        try:
            taken.append(schedule.take())
        except Exception as e:  # what would kill a lock worker
            errors.append(e)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(0.3)
    schedule.touch('near', '/near', 0)
    thread.join(5)
    assert errors == [] and [t.file_id for t in taken] == ['near']
