"""The audit log as the watcher writes it: the legal hold's matter on every line, the hash chain
going on across restarts and rotations, one watcher per log. Through the real qfs_filelock.py
against the emulator where a user would see it; logrotate's copytruncate racing a line is timed
by hand on wormlock.audit.AuditLog, which a process could not be made to hit.
"""

import json
import os
import shutil
import threading

import pytest

from tests.wormlock.rig import Watcher, run_tool, wait_for
from wormlock.audit import GENESIS, AuditLog
from wormlock.locker import Outcome

MATTER = 'CASE-2026-17'


def verify(*paths):
    done = run_tool('--verify-audit', *paths)
    assert (done.returncode, done.stderr) == (0, ''), done.stdout + done.stderr
    return done.stdout.splitlines()


def write_files(drop, *names):
    for name in names:
        (drop / name).write_text(name)
    return [f'/drop/{name}' for name in names]


def wait_recorded(watcher, paths):
    assert wait_for(lambda: set(paths) <= {r['path'] for r in watcher.records()}, 20), watcher.records()


def test_every_line_names_the_matter_and_is_chained_to_the_one_before(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path, '/drop', '--legal-hold', MATTER)
    paths = write_files(drop, 'a.pdf', 'b.pdf', 'c.pdf')
    wait_recorded(watcher, paths)
    watcher.stop()
    records = watcher.records()
    assert {r['matter'] for r in records} == {MATTER}
    assert all(r['legal_hold'] is True for r in records if r['path'] in paths), records
    assert [r['seq'] for r in records] == list(range(1, len(records) + 1))
    assert records[0]['prev'] == GENESIS
    assert all(after['prev'] == before['hash'] for before, after in zip(records, records[1:]))
    assert verify(watcher.audit) == [f'{watcher.audit}: ok: {len(records)} records (chain records 1 to {len(records)})']
    header = [line for line in watcher.log_text().splitlines() if 'legal hold' in line]
    assert header and MATTER in header[0], watcher.log_text()


def test_a_bare_legal_hold_records_no_matter(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path, '/drop', '--legal-hold')
    wait_recorded(watcher, write_files(drop, 'plain.txt'))
    watcher.stop()
    assert {r['matter'] for r in watcher.records()} == {None}


@pytest.mark.slow
def test_a_restarted_watcher_goes_on_with_the_same_chain(sim, tmp_path, drop):
    first = Watcher(sim, tmp_path, '/drop', '--legal-hold', MATTER)
    wait_recorded(first, write_files(drop, 'one.txt', 'two.txt'))
    first.kill()  # no goodbye: the chain goes on from the file's last line
    second = Watcher(sim, tmp_path, '/drop', '--legal-hold', MATTER)
    wait_recorded(second, write_files(drop, 'three.txt'))
    second.stop()
    third = Watcher(sim, tmp_path, '/drop', '--legal-hold', MATTER)
    wait_recorded(third, write_files(drop, 'four.txt'))
    third.stop()
    records = third.records()
    assert [r['seq'] for r in records] == list(range(1, len(records) + 1))
    assert verify(third.audit) == [f'{third.audit}: ok: {len(records)} records (chain records 1 to {len(records)})']


@pytest.mark.slow
def test_a_log_rotated_while_no_watcher_runs_goes_on_from_its_state_file(sim, tmp_path, drop):
    first = Watcher(sim, tmp_path, '/drop', '--legal-hold', MATTER)
    wait_recorded(first, write_files(drop, 'before.txt'))
    first.stop()
    rotated = tmp_path / 'audit.jsonl.1'
    shutil.copyfile(first.audit, rotated)  # logrotate's copytruncate
    os.truncate(first.audit, 0)
    second = Watcher(sim, tmp_path, '/drop', '--legal-hold', MATTER)
    wait_recorded(second, write_files(drop, 'after.txt'))
    second.stop()
    assert second.records()[0]['seq'] == json.loads(rotated.read_text().splitlines()[-1])['seq'] + 1
    checked = verify(rotated, second.audit)
    assert [line.split(': ok: ')[0] for line in checked] == [str(rotated), str(second.audit)]


def test_a_second_watcher_on_the_same_audit_log_is_refused_in_one_line(sim, tmp_path, drop):
    watcher = Watcher(sim, tmp_path, '/drop', '--legal-hold')
    config = tmp_path / 'qfs_filelock_config-admin.ini'
    done = run_tool('--config-file', config, '--directory-path', '/drop', '--legal-hold', '--audit-log', watcher.audit)
    assert done.returncode == 1 and done.stderr.count('\n') == 1, done.stderr
    assert f'--audit-log {watcher.audit} is being written by another watcher' in done.stderr
    watcher.stop()


# fmt: off
BAD_MATTERS = {
    'newline': 'CASE\n17',
    'control-character': 'CASE\x0717',
    'too-long': 'C' * 129,
    'empty': '',
    'space-at-the-end': 'CASE-17 ',
}
# fmt: on


@pytest.mark.parametrize('case', list(BAD_MATTERS))
def test_a_matter_that_is_not_one_printable_line_is_refused_in_one_line(case, tmp_path):
    done = run_tool(
        '--config-file', tmp_path / 'never-read.ini', '--directory-path', '/drop', '--legal-hold=' + BAD_MATTERS[case]
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count('\n') == 1 and done.stderr.startswith('qfs_filelock.py: error: --legal-hold: a matter is')
    assert 'at most 128 characters' in done.stderr


def test_a_matter_of_128_characters_is_taken(tmp_path):
    # refused only for the config file it then looks for: the matter passed
    done = run_tool('--config-file', tmp_path / 'none.ini', '--directory-path', '/drop', '--legal-hold', 'C' * 128)
    assert done.returncode == 3, done.stderr


# --- rotation under a running watcher: AuditLog timed by hand ---------------------------------
def record(audit, n):
    audit.record(Outcome('locked', str(n), f'/drop/f{n}', '1', None, True, matter=MATTER))


def test_a_line_written_between_logrotates_copy_and_truncation_is_written_again(tmp_path):
    live, rotated = tmp_path / 'audit.jsonl', tmp_path / 'audit.jsonl.1'
    audit = AuditLog(str(live))
    record(audit, 1)
    shutil.copyfile(live, rotated)  # copytruncate: the copy...
    record(audit, 2)  # ...a line written before the truncation, in neither file...
    os.truncate(live, 0)  # ...and the truncation
    record(audit, 3)
    audit.close()
    assert [json.loads(line)['seq'] for line in live.read_text().splitlines()] == [1, 2, 3]
    assert verify(rotated, live) == [
        f'{rotated}: ok: 1 record (chain records 1 to 1)',
        f'{live}: ok: 2 records (chain records 2 to 3; 1 repeated from the file before, written again after its '
        'rotation)',
    ]


def test_a_log_rotated_by_renaming_goes_on_in_a_new_file(tmp_path):
    live, rotated = tmp_path / 'audit.jsonl', tmp_path / 'audit.jsonl.1'
    audit = AuditLog(str(live))
    record(audit, 1)
    os.rename(live, rotated)  # logrotate without copytruncate
    record(audit, 2)
    audit.close()
    assert verify(rotated, live) == [
        f'{rotated}: ok: 1 record (chain records 1 to 1)',
        f'{live}: ok: 1 record (chain records 2 to 2)',
    ]


def test_a_log_ending_in_a_line_cut_short_is_ended_and_written_on(tmp_path):
    live = tmp_path / 'audit.jsonl'
    audit = AuditLog(str(live))
    record(audit, 1)
    audit.close()
    with open(live, 'a') as f:
        f.write('{"file_id": "2", "pa')  # the disk filled mid-line under an older version
    audit = AuditLog(str(live))
    record(audit, 3)
    audit.close()
    lines = live.read_text().splitlines()
    assert lines[1] == '{"file_id": "2", "pa' and json.loads(lines[2])['seq'] == 2
    done = run_tool('--verify-audit', live)
    assert done.returncode == 1 and f'{live} line 2: not a record' in done.stderr, done.stderr


def test_workers_recording_at_once_each_get_their_line_in_one_unbroken_chain(tmp_path):
    live = tmp_path / 'audit.jsonl'
    audit = AuditLog(str(live))
    start = threading.Barrier(8)

    def worker(t):
        start.wait()
        for n in range(t * 500, (t + 1) * 500):
            record(audit, n)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    audit.close()
    records = [json.loads(line) for line in live.read_text().splitlines()]
    assert sorted(int(r['file_id']) for r in records) == list(range(4000))
    assert [r['seq'] for r in records] == list(range(1, 4001))
    assert audit.summary() == '4000 locked'
    assert verify(live) == [f'{live}: ok: 4000 records (chain records 1 to 4000)']
