"""The audit log sealed on the cluster (--audit-cluster-dir): WORM-locked files holding the
log's lines byte for byte, one chain across them, nothing lost to a failed seal or a restart.
Through the real qfs_filelock.py against the emulator."""

import pytest
from qumulo.lib.request import RequestError

from tests.wormlock.rig import Watcher, run_tool, wait_for
from wormlock.evidence import SEALED


@pytest.fixture
def evidence(sim):
    path = sim.root / 'evidence'
    path.mkdir()
    return path


def sealed_files(evidence):
    return sorted(p for p in evidence.iterdir() if SEALED.fullmatch(p.name))


def sealed_bytes(evidence):
    return b''.join(p.read_bytes() for p in sealed_files(evidence))


def write_files(drop, *names):
    for name in names:
        (drop / name).write_text(name)
    return {f'/drop/{name}' for name in names}


def watch(sim, tmp_path, *extra):
    return Watcher(sim, tmp_path, '/drop', '--audit-cluster-dir', '/evidence', '--audit-cluster-every', '1', *extra)


def wait_sealed(watcher, evidence, timeout=30):
    """Until every line of the local audit log is in a sealed file."""
    assert wait_for(lambda: watcher.audit.exists() and sealed_bytes(evidence) == watcher.audit.read_bytes(), timeout), (
        watcher.log_text(),
        [p.name for p in sealed_files(evidence)],
    )


def test_the_audit_lines_are_sealed_on_the_cluster_locked_and_verify_as_one_chain(sim, tmp_path, drop, evidence):
    watcher = watch(sim, tmp_path)
    paths = write_files(drop, 'a.pdf', 'b.pdf')
    assert wait_for(lambda: paths <= watcher.locked_paths(), 20)
    wait_sealed(watcher, evidence)
    paths |= write_files(drop, 'c.pdf')
    assert wait_for(lambda: paths <= watcher.locked_paths(), 20)
    wait_sealed(watcher, evidence)
    watcher.stop()
    files = sealed_files(evidence)
    assert len(files) >= 2 and files[0].name.startswith('audit.000000000001-'), [f.name for f in files]
    client = sim.client()
    for f in files:
        attrs = client.fs.get_file_attr(path=f'/evidence/{f.name}', retrieve_file_lock=True)
        assert attrs['lock']['retention_period'], attrs  # the folder's 7d, the longest there is
        with pytest.raises(RequestError) as refused:
            client.fs.delete(path=f'/evidence/{f.name}')
        assert refused.value.status_code in (400, 403), refused.value
    done = run_tool('--verify-audit', *files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'sealed audit records 1 to' in watcher.log_text()


def test_a_stop_seals_the_rest_and_a_restart_goes_on_from_the_last_sealed_line(sim, tmp_path, drop, evidence):
    watcher = Watcher(sim, tmp_path, '/drop', '--audit-cluster-dir', '/evidence', '--audit-cluster-every', '3600')
    paths = write_files(drop, 'one.txt')
    assert wait_for(lambda: paths <= watcher.locked_paths(), 20)
    watcher.stop()  # the turn is an hour away: only the stop seals
    assert sealed_bytes(evidence) == watcher.audit.read_bytes()
    watcher = watch(sim, tmp_path)
    paths |= write_files(drop, 'two.txt')
    assert wait_for(lambda: '/drop/two.txt' in watcher.locked_paths(), 20)
    wait_sealed(watcher, evidence)
    watcher.stop()
    records = [r['seq'] for r in watcher.records()]
    assert records == list(range(1, len(records) + 1))
    assert run_tool('--verify-audit', *sealed_files(evidence)).returncode == 0


def test_a_seal_the_cluster_refuses_keeps_its_lines_until_a_later_one_takes_them(sim, tmp_path, drop, evidence):
    watcher = Watcher(sim, tmp_path, '/drop', '--audit-cluster-dir', '/evidence', '--audit-cluster-every', '2')
    paths = write_files(drop, 'kept.txt')
    assert wait_for(lambda: paths <= watcher.locked_paths(), 20)
    sim.control('fail-next', {'count': 3, 'status': 500})  # a cluster failing for a while
    assert wait_for(lambda: 'could not seal audit records' in watcher.log_text(), 20), watcher.log_text()
    wait_sealed(watcher, evidence, timeout=60)
    assert 'sealed on the cluster again' in watcher.log_text()
    watcher.stop()


def test_a_legal_hold_only_watch_seals_under_a_legal_hold(sim, tmp_path, drop, evidence):
    watcher = watch(sim, tmp_path, '--legal-hold', 'CASE-9')
    paths = write_files(drop, 'held.txt')
    assert wait_for(lambda: paths <= watcher.locked_paths(), 20)
    wait_sealed(watcher, evidence)
    watcher.stop()
    lock = sim.client().fs.get_file_attr(path=f'/evidence/{sealed_files(evidence)[0].name}', retrieve_file_lock=True)
    assert lock['lock'] == {'legal_hold': True, 'retention_period': None}, lock


@pytest.mark.parametrize(
    'args, message',
    [
        (['--audit-cluster-dir', '/evidence'], '--audit-cluster-dir needs --audit-log FILE'),
        (['--audit-log', 'a.jsonl', '--audit-cluster-dir', 'evidence'], 'must be an absolute cluster path'),
        (['--audit-log', 'a.jsonl', '--audit-retention', '7d'], 'only go with --audit-cluster-dir PATH'),
        (
            ['--audit-log', 'a.jsonl', '--audit-cluster-dir', '/evidence', '--audit-retention', 'soon'],
            '--audit-retention takes a period',
        ),
        (['--audit-log', 'a.jsonl', '--audit-cluster-dir', '/evidence', '--dry-run'], 'not with --dry-run'),
    ],
)
def test_a_bad_sealing_option_is_one_line_and_exit_2(args, message, tmp_path):
    done = run_tool('--directory-path', '/drop', '--retention', '7d', *args)
    assert done.returncode == 2 and message in done.stderr and 'Traceback' not in done.stderr, done.stderr


def test_a_sealing_folder_that_does_not_exist_is_one_line_before_anything_is_locked(sim, tmp_path, drop):
    config = sim.write_config(tmp_path / 'c.ini')
    done = run_tool(
        '--config-file', config, '--directory-path', '/drop', '--retention', '7d', '--audit-log',
        tmp_path / 'a.jsonl', '--audit-cluster-dir', '/nowhere',
    )  # fmt: skip
    assert done.returncode != 0 and '--audit-cluster-dir /nowhere does not exist on the cluster' in done.stderr
    assert 'Traceback' not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
