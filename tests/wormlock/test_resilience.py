"""qfs_filelock against the emulated cluster under the failures that matter to a compliance user:
bursts, dropped streams, a killed watcher, expired sessions, files still being written."""

import os
import threading
import time

import pytest

from tests.wormlock.rig import Watcher, assert_all_locked, create_files, locks_on_cluster, wait_for
from tests.hostile_proxy import HostileProxy


@pytest.mark.slow
def test_a_burst_of_5000_files_is_all_locked(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path)
    paths = create_files(drop, 5000)
    assert_all_locked(sim, watcher, paths)
    watcher.stop()
    assert not [r for r in watcher.records() if r['result'] == 'failed']


@pytest.mark.slow
def test_streams_dropped_twice_mid_burst_leave_nothing_unlocked(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path)
    paths = create_files(drop, 2000, 'a')
    for batch in 'bc':
        assert sim.control('drop-streams')['dropped'] == 1
        paths += create_files(drop, 1500, batch)
        # the next drop must find a stream to end: wait for the watcher to be back
        assert wait_for(lambda: watcher.log_text().count('watching') >= 2 + (batch == 'c'), 30)
    assert_all_locked(sim, watcher, paths)
    assert watcher.log_text().count('reconnecting') >= 2
    watcher.stop()


@pytest.mark.slow
def test_a_watcher_killed_mid_burst_and_restarted_leaves_nothing_unlocked(sim, tmp_path, drop):
    first = Watcher(sim, tmp_path)
    paths = create_files(drop, 3000, 'a')
    wait_for(lambda: len(first.locked_paths()) >= 300, 60)
    first.kill()
    paths += create_files(drop, 1000, 'b')  # written while no watcher runs
    second = Watcher(sim, tmp_path)
    assert_all_locked(sim, second, paths)
    second.stop()


@pytest.mark.slow
def test_a_file_written_in_pieces_is_locked_only_after_its_last_write(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path, '/drop', '--settle', '1')
    target = drop / 'video.mov'
    with open(target, 'wb') as f:
        for _ in range(7):  # 3 s of writing, a piece every half second
            f.write(b'x' * 1000)
            f.flush()
            time.sleep(0.5)
    last_write = time.time()
    assert wait_for(lambda: '/drop/video.mov' in watcher.locked_paths(), 20)
    record = next(r for r in watcher.records() if r['path'] == '/drop/video.mov')
    locked_at = time.mktime(time.strptime(record['time'][:19], '%Y-%m-%dT%H:%M:%S')) - time.timezone
    assert locked_at >= int(last_write) and record['size'] == '7000'
    watcher.stop()


def test_a_file_renamed_into_place_is_locked_under_its_final_name(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path)
    for i in range(20):
        temp = drop / f'.upload-{i}.tmp'
        temp.write_bytes(b'payload')
        os.rename(temp, drop / f'report-{i}.pdf')
    finals = [f'/drop/report-{i}.pdf' for i in range(20)]
    assert_all_locked(sim, watcher, finals)
    watcher.stop()
    assert not [r for r in watcher.records() if r['result'] == 'failed']
    assert not [r for r in watcher.records() if '.tmp' in (r['path'] or '') and r['result'] == 'locked']


@pytest.mark.slow
def test_sessions_expired_mid_run_and_failing_calls_do_not_stop_it(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path)
    paths = create_files(drop, 50, 'a')
    assert_all_locked(sim, watcher, paths)
    sim.control('expire-sessions')
    sim.control('fail-next', {'count': 3, 'status': 503})
    paths += create_files(drop, 50, 'b')
    assert_all_locked(sim, watcher, paths)
    watcher.stop()
    assert 'logging in again' in watcher.log_text()


def test_an_existing_longer_retention_is_never_shortened(sim, tmp_path, drop):
    (drop / 'kept.dat').write_bytes(b'x')
    sim.client().fs.modify_file_lock(path='/drop/kept.dat', retention_period='2035-01-01T00:00:00Z')
    watcher = Watcher(sim, tmp_path)
    assert wait_for(lambda: any(r['path'] == '/drop/kept.dat' for r in watcher.records()), 20)
    watcher.stop()
    assert [r['result'] for r in watcher.records()] == ['already-locked']
    assert locks_on_cluster(sim, ['/drop/kept.dat'])['/drop/kept.dat']['retention_period'] == '2035-01-01T00:00:00Z'


def test_legal_hold_and_retention_together(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path, '/drop', '--legal-hold', '--retention', '2031-12-31', '--interval', '0')
    (drop / 'evidence.eml').write_bytes(b'mail')
    assert wait_for(lambda: '/drop/evidence.eml' in watcher.locked_paths(), 20)
    watcher.stop()
    lock = locks_on_cluster(sim, ['/drop/evidence.eml'])['/drop/evidence.eml']
    assert lock == {'legal_hold': True, 'retention_period': '2031-12-31T00:00:00Z'}


@pytest.mark.slow
def test_a_cluster_restart_mid_burst_is_ridden_out_and_logged_once(sim, tmp_path, drop):
    # Down for 20 s on the same port: connections reset, then refused; sessions gone when it is back.
    watcher = Watcher(sim, tmp_path)
    paths = create_files(drop, 200, 'a')
    restarter = threading.Thread(target=sim.restart, args=(20,))
    restarter.start()
    time.sleep(0.5)
    paths += create_files(drop, 200, 'b')  # written while the cluster is down: found by the catch-up
    restarter.join()
    paths += create_files(drop, 200, 'c')
    assert_all_locked(sim, watcher, paths)
    assert watcher.proc.poll() is None
    text = watcher.log_text()
    assert text.count('the cluster is unavailable') == 1, text
    assert text.count('the cluster is back') == 1, text
    watcher.stop()


@pytest.mark.slow
def test_idle_connections_cut_by_a_proxy_do_not_stop_the_watcher(sim, tmp_path, drop):
    # Every connection idle for 2 s is cut, the notify stream included (the emulator's keepalive
    # comes every second here, but the proxy cuts streams silent for 2 s too, as after 3 s).
    proxy = HostileProxy(sim, tmp_path, idle_cut_s=2)
    try:
        watcher = Watcher(sim, tmp_path, port=proxy.port)
        paths = create_files(drop, 100, 'a')
        assert_all_locked(sim, watcher, paths)
        for batch in 'bcd':
            time.sleep(3)  # every connection but the stream's is cut while idle
            sim.control('expire-sessions')  # the next call of each is a 401...
            sim.control('drop-streams')  # ...the stream's too: the re-login goes on a dead connection
            paths += create_files(drop, 100, batch)
            assert_all_locked(sim, watcher, paths)
        assert proxy.cuts >= 3 and watcher.proc.poll() is None
        watcher.stop()
    finally:
        proxy.stop()


def test_a_watcher_cut_off_for_falling_behind_reconnects_and_rescans_what_it_missed(sim, tmp_path, drop):
    # A cluster stops queuing events for a watcher that falls too far behind, ends its stream and
    # refuses its next notify request once with fs_watcher_missed_events_error. The watcher must
    # connect again and rescan: only the rescan can find what the lost events named.
    watcher = Watcher(sim, tmp_path, '/drop', '--rescan-every', '3600')
    assert wait_for(lambda: 'catch-up scan of /drop' in watcher.log_text(), 20)
    sim.control('notify/limit', {'events': 20})  # for streams opened from now on
    sim.control('drop-streams')
    assert wait_for(lambda: watcher.log_text().count('catch-up scan of /drop') >= 2, 20), watcher.log_text()
    sim.control('notify/stall', {'seconds': 2})  # the stream hands nothing over: events pile up
    paths = create_files(drop, 60, dirs=3)  # 120 events or more, past the limit of 20
    # At most 20 events reach the watcher before the cut-off: the other files are found by the
    # rescan that follows the refused reconnect.
    assert_all_locked(sim, watcher, paths, timeout=30)
    log = watcher.log_text()
    assert 'the cluster cut the notify stream off: the watcher fell behind' in log, log
    assert 'the cluster lost change events (fs_watcher_missed_events_error' in log, log
    assert 'reconnecting and rescanning' in log
    assert wait_for(lambda: watcher.log_text().count('catch-up scan of /drop') >= 3, 20), watcher.log_text()
    assert watcher.proc.poll() is None
    watcher.stop()
    assert not [r for r in watcher.records() if r['result'] == 'failed']
