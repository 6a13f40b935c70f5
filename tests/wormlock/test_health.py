"""A hung watcher is found out: a notify stream silent past its threshold is replaced.

The watcher runs as a real process against the emulator, whose keepalive comes every second; the
threshold is shortened through the environment.
"""

import time

import pytest

from tests.wormlock.rig import Watcher, assert_all_locked, create_files, wait_for

SILENCE_S = 3  # the stream's silence threshold in these tests (60 s in a real run)


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
