"""A hung watcher is found out: a notify stream silent past its threshold is replaced, and systemd
hears WATCHDOG=1 only while the watcher makes progress (its unit then restarts one that hangs).

The watcher runs as a real process against the emulator, with NOTIFY_SOCKET pointing at a
datagram socket the test reads, as systemd's would be; the emulator's keepalive comes every second,
and the thresholds are shortened through the environment.
"""

import os
import socket
import tempfile
import threading
import time
import uuid

import pytest

from tests.wormlock.rig import Watcher, assert_all_locked, create_files, wait_for
from wormlock.health import Health, Notifier

SILENCE_S = 3  # the stream's silence threshold in these tests (60 s in a real run)
STUCK_S = 2  # how long a worker may hold a file (300 s in a real run)


class Systemd:
    """The receiving end of NOTIFY_SOCKET: every message with the time it arrived."""

    def __init__(self, address=None):
        self.address = address or f'@qfs-filelock-test-{uuid.uuid4().hex}'
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind('\0' + self.address[1:] if self.address.startswith('@') else self.address)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, 'NAME=value')
        self._closed = False
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self):
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, OSError):
                continue
            now = time.monotonic()
            self.messages.extend((now, line) for line in data.decode().splitlines())

    def env(self, watchdog_s=2):
        return {
            'NOTIFY_SOCKET': self.address,
            'WATCHDOG_USEC': str(int(watchdog_s * 1e6)),
            'QFS_FILELOCK_STREAM_SILENCE_S': str(SILENCE_S),
            'QFS_FILELOCK_STUCK_S': str(STUCK_S),
        }

    def times(self, message, since=0.0):
        return [t for t, line in list(self.messages) if line == message and t >= since]

    def statuses(self, since=0.0):
        return [line for t, line in list(self.messages) if line.startswith('STATUS=') and t >= since]

    def longest_silence(self, message, start, end):
        """The longest stretch within [start, end] without `message`."""
        marks = [start] + [t for t in self.times(message) if start < t < end] + [end]
        return max(b - a for a, b in zip(marks, marks[1:]))

    def close(self):
        self._closed = True
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def systemd():
    listener = Systemd()
    yield listener
    listener.close()


# --- the notify protocol and the rules, without a cluster -------------------------------------
def test_notify_reaches_a_socket_path_and_an_abstract_socket():
    with tempfile.TemporaryDirectory(dir='/tmp') as folder:  # a socket path is at most 108 bytes
        for address in (os.path.join(folder, 'notify'), f'@qfs-filelock-test-{uuid.uuid4().hex}'):
            listener = Systemd(address)
            try:
                Notifier(address).send('READY=1\nSTATUS=watching /drop')
                assert wait_for(lambda: len(listener.messages) == 2, 5)
                assert [line for _, line in listener.messages] == ['READY=1', 'STATUS=watching /drop']
            finally:
                listener.close()


def test_without_notify_socket_nothing_is_sent_and_nothing_fails():
    Notifier(None).send('READY=1')  # not run by systemd
    Notifier('/nonexistent/notify').send('READY=1')  # a socket gone: one warning, no exception


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Schedule:
    def __init__(self):
        self.taken = None

    def oldest_taken(self):
        return self.taken

    def waiting(self):
        return 0, 0.0


def health_at(clock, dead=()):
    health = Health(Notifier(None), 60, silence_s=60, stuck_s=300, now=clock)
    schedule = Schedule()
    health.watch(schedule, lambda: list(dead))
    return health, schedule


def test_a_stream_silent_past_the_threshold_stops_the_watchdog_until_it_shows_life_again():
    clock = Clock()
    health, _ = health_at(clock)
    health.stream_opened('/drop')
    clock.now += 59
    assert health.problem() is None
    clock.now += 2
    assert health.problem() == 'the notify stream of /drop has sent nothing for 61 s, not even a keepalive'
    # The watcher takes it for dead and opens another, which is no sign of life by itself.
    health.stream_ended('/drop', silent=True)
    health.stream_opened('/drop')
    assert health.problem() is not None
    health.stream_alive('/drop')
    assert health.problem() is None
    # A stream lost otherwise (dropped, cut off) starts afresh when it opens again.
    clock.now += 61
    health.stream_ended('/drop', silent=False)
    health.stream_opened('/drop')
    assert health.problem() is None


def test_an_outage_the_watcher_rides_out_is_no_hang_and_a_folder_let_go_is_not_watched():
    clock = Clock()
    health, _ = health_at(clock)
    health.stream_opened('/drop')
    health.outage_started()
    clock.now += 600
    assert health.problem() is None
    health.outage_ended()  # the stream has the threshold from now on to show life
    clock.now += 59
    assert health.problem() is None
    health.stream_stopped('/drop')
    clock.now += 600
    assert health.problem() is None


def test_a_worker_holding_a_file_too_long_or_a_thread_gone_stops_the_watchdog():
    clock = Clock()
    health, schedule = health_at(clock)
    schedule.taken = (299.0, '/drop/a.dat')
    assert health.problem() is None
    schedule.taken = (301.0, '/drop/a.dat')
    assert health.problem() == 'a worker has been locking /drop/a.dat for 301 s'
    health, _ = health_at(clock, dead=['catch-up-scan'])
    assert health.problem() == 'catch-up-scan no longer runs'


# --- the real process ------------------------------------------------------------------------
@pytest.mark.slow
def test_a_stream_silent_past_the_threshold_is_replaced_and_the_watcher_goes_on_locking(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path, env={'QFS_FILELOCK_STREAM_SILENCE_S': str(SILENCE_S)})
    assert wait_for(lambda: 'catch-up scan of /drop' in watcher.log_text(), 20)
    sim.control('notify/stall', {'seconds': 2 * SILENCE_S + 1})  # no event, no keepalive
    paths = create_files(drop, 10, 'a', dirs=2)  # written while the stream is silent
    dead = f'the notify stream sent nothing for {SILENCE_S} s, not even a keepalive: taking the connection for dead'
    assert wait_for(lambda: dead in watcher.log_text(), 3 * SILENCE_S), watcher.log_text()
    assert_all_locked(sim, watcher, paths, timeout=30)  # found by the scan that follows the new stream
    time.sleep(SILENCE_S + 1)  # the stall is over: the stream delivers again
    lines = watcher.log_text().count(dead)
    assert 1 <= lines <= 3, watcher.log_text()  # one line per stream taken for dead
    paths = create_files(drop, 10, 'b', dirs=2)
    assert_all_locked(sim, watcher, paths, timeout=30)
    assert watcher.log_text().count(dead) == lines  # the stream it has now is alive
    watcher.stop()


@pytest.mark.slow
def test_systemd_hears_ready_and_then_watchdog_only_while_the_stream_delivers(sim, tmp_path, drop, systemd):
    started = time.monotonic()
    watcher = Watcher(sim, tmp_path, env=systemd.env(watchdog_s=2))  # WATCHDOG=1 every 0.5 s
    assert wait_for(lambda: systemd.times('READY=1'), 10)
    assert wait_for(lambda: len(systemd.times('WATCHDOG=1')) >= 4, 10)
    assert systemd.times('READY=1')[0] - started < 10 and len(systemd.times('READY=1')) == 1
    assert any(s.startswith('STATUS=watching /drop: 0 files locked') for s in systemd.statuses())

    stall = 4 * SILENCE_S
    stalled = time.monotonic()
    sim.control('notify/stall', {'seconds': stall})
    assert wait_for(lambda: systemd.times('WATCHDOG=1', since=stalled + stall), stall + 10)
    # Silent from about SILENCE_S after the stall began (the last keepalive came just before it)
    # to its end: the streams that replaced the silent one were silent too.
    assert systemd.longest_silence('WATCHDOG=1', stalled, stalled + stall) >= stall - SILENCE_S - 2
    assert any('not making progress: the notify stream of /drop has sent nothing' in s for s in systemd.statuses())
    log = watcher.log_text()
    assert 'not telling systemd the watcher is alive: the notify stream of /drop has sent nothing' in log
    assert 'the watcher makes progress again' in log

    (drop / 'after.dat').write_bytes(b'x')
    assert wait_for(lambda: '/drop/after.dat' in watcher.locked_paths(), 20)
    watcher.stop()
    assert systemd.times('STOPPING=1')


@pytest.mark.slow
def test_systemd_hears_no_watchdog_while_a_worker_is_stuck_on_a_file(sim, tmp_path, drop, systemd):
    watcher = Watcher(sim, tmp_path, env=systemd.env(watchdog_s=2))
    assert wait_for(lambda: len(systemd.times('WATCHDOG=1')) >= 2, 10)
    sim.control('latency', {'ms': 5000})  # each call answered 5 s late: a lock takes 5 s or more
    slowed = time.monotonic()
    (drop / 'slow.dat').write_bytes(b'x')
    stuck = 'not making progress: a worker has been locking /drop/slow.dat for'
    assert wait_for(lambda: any(stuck in s for s in systemd.statuses(since=slowed)), 10), systemd.statuses()
    assert wait_for(lambda: '/drop/slow.dat' in watcher.locked_paths(), 30)
    locked = time.monotonic()
    sim.control('latency', {'ms': 0})
    assert wait_for(lambda: systemd.times('WATCHDOG=1', since=locked), 10)
    # No WATCHDOG=1 for the seconds the worker held the file past the threshold (less a check's
    # interval at either end).
    held = locked - slowed
    assert held >= 5 and systemd.longest_silence('WATCHDOG=1', slowed, locked) >= held - STUCK_S - 1.5
    watcher.stop()
