"""--metrics-port: Prometheus scrapes the running watcher over HTTP and reads what it did, what
waits, and how its stream and catch-up scans fare; a port it cannot have is one line and exit 2."""

import re
import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.wormlock.rig import Watcher, create_files, run_tool, wait_for


def metrics_url(watcher):
    found = wait_for(lambda: re.search(r'metrics: +(http://\S+/metrics)', watcher.log_text()), 10)
    assert found, watcher.log_text()
    return found.group(1)


def scrape(url):
    """{(name, frozenset of labels): value} of every sample on the page."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def test_the_metrics_count_files_locked_and_events_and_show_the_stream_and_the_scan(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path, '/drop', '--metrics-port', '0')
    url = metrics_url(watcher)
    assert url.startswith('http://127.0.0.1:')  # this host only, unless --metrics-address says otherwise
    create_files(drop, 20)
    locked = 'qfs_filelock_files_total', {'policy': '/drop', 'result': 'locked'}
    assert wait_for(lambda: value(scrape(url), locked[0], **locked[1]) == 20, 30), scrape(url)
    samples = scrape(url)
    assert value(samples, 'qfs_filelock_files_total', policy='/drop', result='failed') == 0
    assert value(samples, 'qfs_filelock_events_total', folder='/drop') >= 20
    assert value(samples, 'qfs_filelock_stream_silence_seconds', folder='/drop') < 5  # keepalives every second
    assert 0 <= value(samples, 'qfs_filelock_scan_files', folder='/drop') <= 20  # the scan at start: a race
    assert value(samples, 'qfs_filelock_scan_duration_seconds', folder='/drop') < 5
    assert value(samples, 'qfs_filelock_files_waiting') == 0
    assert value(samples, 'qfs_filelock_stream_reconnects_total', folder='/drop') is None  # none yet
    assert value(samples, 'qfs_filelock_outages_total') == 0
    assert value(samples, 'process_resident_memory_bytes') > 0
    assert not [name for name, _ in samples if name.endswith('_created')]

    sim.control('drop-streams')
    assert wait_for(lambda: value(scrape(url), 'qfs_filelock_stream_reconnects_total', folder='/drop') == 1, 20)
    assert wait_for(lambda: value(scrape(url), 'qfs_filelock_scan_files', folder='/drop') == 20, 20)  # its rescan
    watcher.stop()


def test_files_are_counted_under_the_policy_of_their_folder_and_each_folder_has_its_stream(sim, tmp_path):
    for folder in ('finance', 'legal'):
        (sim.root / folder).mkdir()
    policy = tmp_path / 'policy.toml'
    policy.write_text(
        '[defaults]\nretention = "7d"\ninterval = 0\nrecursive = true\n'
        '[[folder]]\nname = "records"\npath = "/finance"\n'
        '[[folder]]\nname = "case-17"\npath = "/legal"\n'
    )
    watcher = Watcher(sim, tmp_path, None, '--policy', str(policy), '--metrics-port', '0')
    url = metrics_url(watcher)
    create_files(sim.root / 'finance', 3, dirs=1)
    create_files(sim.root / 'legal', 2, dirs=1)
    counted = {'records': 3, 'case-17': 2}
    assert wait_for(
        lambda: all(
            value(scrape(url), 'qfs_filelock_files_total', policy=name, result='locked') == n
            for name, n in counted.items()
        ),
        30,
    ), scrape(url)
    samples = scrape(url)
    for folder in ('/finance', '/legal'):
        assert value(samples, 'qfs_filelock_stream_silence_seconds', folder=folder) < 5
    watcher.stop()


def test_files_waiting_to_settle_are_counted_with_the_age_of_the_oldest(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path, '/drop', '--interval', '3600', '--metrics-port', '0')
    url = metrics_url(watcher)
    # After the start-up catch-up scan: a file it finds unlocked is locked at once, not kept waiting
    # (a loaded run created the files while it still ran).
    assert wait_for(lambda: 'catch-up scan of /drop' in watcher.log_text(), 20)
    create_files(drop, 5)
    assert wait_for(lambda: value(scrape(url), 'qfs_filelock_files_waiting') == 5, 20)
    first = value(scrape(url), 'qfs_filelock_oldest_waiting_seconds')
    assert wait_for(lambda: value(scrape(url), 'qfs_filelock_oldest_waiting_seconds') >= first + 1, 5)
    assert value(scrape(url), 'qfs_filelock_files_total', policy='/drop', result='locked') is None  # none yet
    watcher.stop()


def test_a_metrics_port_in_use_is_one_line_and_exit_2_before_anything_is_watched(sim, tmp_path):
    config = sim.write_config(tmp_path / 'qfs_filelock_config.ini')
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        for daemon in ([], ['--run-as-daemon', '--pid-file', str(tmp_path / 'pid'), '--log-file', str(tmp_path / 'l')]):
            done = run_tool(
                '--config-file', config, '--directory-path', '/drop', '--retention', '7d',
                '--metrics-port', port, *daemon,
            )  # fmt: skip
            assert done.returncode == 2, done
            assert done.stderr == (
                f'qfs_filelock.py: error: --metrics-port {port}: another program listens on 127.0.0.1:{port} '
                'already (Address already in use); choose another port\n'
            )


@pytest.mark.parametrize(
    'args, message',
    [
        (['--metrics-port', '70000'], '--metrics-port must be a port number, 0 to 65535, not 70000'),
        (['--metrics-address', '0.0.0.0'], '--metrics-address only goes with --metrics-port PORT'),
    ],
)
def test_a_bad_metrics_option_is_one_line_and_exit_2(args, message):
    done = run_tool('--directory-path', '/drop', '--retention', '7d', *args)
    assert (done.returncode, done.stderr) == (2, f'qfs_filelock.py: error: {message} (see --help)\n')


def test_an_address_not_of_this_host_is_one_line_and_exit_2(sim, tmp_path):
    config = sim.write_config(tmp_path / 'qfs_filelock_config.ini')
    done = run_tool(
        '--config-file', config, '--directory-path', '/drop', '--retention', '7d',
        '--metrics-port', '0', '--metrics-address', '192.0.2.1',
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith('qfs_filelock.py: error: --metrics-address 192.0.2.1: cannot listen there (')
    assert done.stderr.count('\n') == 1
