"""`qfs_filelock.py --verify-audit FILE...` as a user runs it: the chain of an audit log checked
across its rotated files, and each way of breaking it named in one line with a non-zero exit.

The logs are written by wormlock.audit.AuditLog itself (what the watcher writes with), so that a
test needs no cluster; test_audit.py writes them through a real watcher.
"""

import gzip
import json
import os
import shutil

import pytest

from tests.wormlock.rig import run_tool
from wormlock.audit import GENESIS, AuditLog, digest
from wormlock.locker import Outcome

ERROR = 'qfs_filelock.py: error: '


def write(path, first, count):
    """Records `first` .. `first + count - 1` appended to the audit log `path`, as a watcher would."""
    audit = AuditLog(str(path))
    for n in range(first, first + count):
        audit.record(Outcome('locked', str(n), f'/drop/f{n}.dat', '5', '2031-12-31T00:00:00Z', False))
    audit.close()


def rotate(path, to, compress=False):
    """What logrotate's copytruncate does: copy FILE to `to` (gzipped: FILE.2.gz) and empty FILE."""
    if compress:
        with open(path, 'rb') as source, gzip.open(to, 'wb') as target:
            shutil.copyfileobj(source, target)
    else:
        shutil.copyfile(path, to)
    os.truncate(path, 0)


@pytest.fixture
def rotated(tmp_path):
    """audit.jsonl.2.gz (records 1-5), audit.jsonl.1 (6-10), audit.jsonl (11-15), oldest first."""
    live = tmp_path / 'audit.jsonl'
    write(live, 1, 5)
    rotate(live, tmp_path / 'audit.jsonl.2.gz', compress=True)
    write(live, 6, 5)
    rotate(live, tmp_path / 'audit.jsonl.1')
    write(live, 11, 5)
    return [tmp_path / 'audit.jsonl.2.gz', tmp_path / 'audit.jsonl.1', live]


def verify(*paths):
    return run_tool('--verify-audit', *paths)


def lines(path):
    return path.read_text().splitlines(keepends=True)


def assert_broken(done, *words):
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith(ERROR) and done.stderr.count('\n') == 1, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    assert 'Traceback' not in done.stderr


def test_an_intact_chain_across_rotated_files_is_ok_one_line_per_file(rotated):
    done = verify(*rotated)
    assert (done.returncode, done.stderr) == (0, ''), done.stderr
    assert done.stdout.splitlines() == [
        f'{rotated[0]}: ok: 5 records (chain records 1 to 5)',
        f'{rotated[1]}: ok: 5 records (chain records 6 to 10)',
        f'{rotated[2]}: ok: 5 records (chain records 11 to 15)',
    ]


def test_the_chain_is_sha256_over_the_canonical_line_from_a_fixed_genesis(rotated):
    records = [json.loads(line) for line in lines(rotated[1]) + lines(rotated[2])]
    with gzip.open(rotated[0], 'rt') as f:
        first = json.loads(f.readline())
    assert GENESIS == '0' * 64 and (first['seq'], first['prev']) == (1, GENESIS)
    for before, after in zip(records, records[1:]):
        assert after['prev'] == before['hash'] and after['seq'] == before['seq'] + 1
    for record in records:
        assert record['hash'] == digest(record)  # SHA-256 of the JSON without hash, keys sorted, no spaces


def test_an_edited_line_is_named_with_its_file_and_line(rotated):
    text = lines(rotated[1])
    text[2] = text[2].replace('/drop/f8.dat', '/drop/innocent.dat')
    rotated[1].write_text(''.join(text))
    done = verify(*rotated)
    assert done.stdout == f'{rotated[0]}: ok: 5 records (chain records 1 to 5)\n'
    assert_broken(done, f'{rotated[1]} line 3: edited: record 8 does not match its hash')


def test_a_line_edited_and_its_hash_made_anew_shows_at_the_next_line(rotated):
    text = lines(rotated[2])
    record = json.loads(text[1])
    record['legal_hold'] = True
    record['hash'] = digest(record)
    text[1] = json.dumps(record, sort_keys=True) + '\n'
    rotated[2].write_text(''.join(text))
    assert_broken(
        verify(*rotated), f'{rotated[2]} line 3 (record 13) does not follow the line before it (record 12)', 'rewritten'
    )


def test_a_removed_line_is_named(rotated):
    text = lines(rotated[1])
    del text[1]
    rotated[1].write_text(''.join(text))
    assert_broken(verify(*rotated), f'{rotated[1]} line 2 (record 8) follows record 6: record 7 is removed')


def test_two_lines_swapped_are_named_as_reordered(rotated):
    text = lines(rotated[2])
    text[1], text[2] = text[2], text[1]
    rotated[2].write_text(''.join(text))
    assert_broken(
        verify(*rotated),
        f'{rotated[2]} line 2 (record 13) comes where record 12 should: lines reordered (record 12 is at line 3)',
    )


def test_a_rotated_file_left_out_of_the_list_is_named(rotated):
    done = verify(rotated[0], rotated[2])
    assert_broken(
        done,
        f'{rotated[2]} line 1 (record 11) does not follow {rotated[0]}, which ends at record 5: '
        'records 6 to 10 are missing: a rotated file between them left out of the list',
    )


def test_files_out_of_order_are_named(rotated):
    assert_broken(verify(rotated[1], rotated[0], rotated[2]), f'{rotated[0]}', 'out of order (give them oldest first)')


def test_lines_cut_off_the_end_show_against_the_state_file(rotated):
    text = lines(rotated[2])
    rotated[2].write_text(''.join(text[:-2]))
    assert_broken(
        verify(*rotated),
        f'{rotated[2]}: the chain ends at record 13, but {rotated[2]}.chain says record 15 was written: '
        'records 14 to 15 are removed from the end',
    )


def test_a_line_put_in_without_a_hash_after_chained_ones_is_tampering(rotated):
    text = lines(rotated[1])
    text.insert(2, json.dumps({'file_id': '99', 'path': '/drop/planted', 'result': 'locked'}) + '\n')
    rotated[1].write_text(''.join(text))
    assert_broken(verify(*rotated), f'{rotated[1]} line 3: carries no hash, yet chained records come before it')


def test_a_line_that_is_not_a_record_is_named(rotated):
    text = lines(rotated[2])
    text[3] = text[3][:40] + '\n'  # cut short, as a full disk or an editor would leave it
    rotated[2].write_text(''.join(text))
    assert_broken(verify(*rotated), f'{rotated[2]} line 4: not a record (not a JSON object)')


def test_a_line_written_otherwise_than_the_tool_writes_is_edited_even_with_its_hash(rotated):
    text = lines(rotated[2])
    text[0] = json.dumps(json.loads(text[0]), sort_keys=True, indent=None, separators=(',', ':')) + '\n'
    rotated[2].write_text(''.join(text))
    assert_broken(verify(*rotated), f'{rotated[2]} line 1: edited: record 11 is not written as the tool writes it')


def test_a_chain_begun_afresh_after_its_state_file_was_lost_is_named(tmp_path):
    live = tmp_path / 'audit.jsonl'
    write(live, 1, 3)
    rotate(live, tmp_path / 'audit.jsonl.1')
    os.unlink(str(live) + '.chain')
    write(live, 4, 2)
    assert_broken(verify(tmp_path / 'audit.jsonl.1', live), 'begins a new chain after', 'state file lost?')


def test_lines_of_an_older_version_before_the_chain_are_unchained_not_tampering(tmp_path):
    live = tmp_path / 'audit.jsonl'
    old = [{'file_id': str(n), 'path': f'/drop/old{n}', 'result': 'locked', 'time': 'then'} for n in (1, 2)]
    live.write_text(''.join(json.dumps(r, sort_keys=True) + '\n' for r in old))
    write(live, 3, 2)
    done = verify(live)
    assert (done.returncode, done.stderr) == (0, ''), done.stderr
    assert done.stdout == f'{live}: ok: 4 records (chain records 1 to 2; 2 unchained, written before the chain began)\n'


def test_an_empty_file_just_rotated_is_ok(rotated):
    rotate(rotated[2], rotated[2].with_name('audit.jsonl.0'))
    done = verify(rotated[0], rotated[1], rotated[2].with_name('audit.jsonl.0'), rotated[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f'{rotated[2]}: ok: 0 records'


@pytest.mark.parametrize('which', ['missing', 'a-directory'])
def test_a_file_that_cannot_be_read_is_one_line_and_exit_2_before_anything_is_checked(which, rotated, tmp_path):
    bad = tmp_path / 'nowhere.jsonl' if which == 'missing' else tmp_path
    done = verify(rotated[0], bad, rotated[2])
    assert done.returncode == 2, done.stderr
    assert done.stdout == ''
    assert done.stderr.count('\n') == 1 and done.stderr.startswith(f'{ERROR}--verify-audit {bad}: cannot read it: ')
    assert ('No such file or directory' if which == 'missing' else 'Is a directory') in done.stderr


def test_verify_audit_goes_alone(rotated):
    done = run_tool('--verify-audit', rotated[2], '--report', '/drop')
    assert done.returncode == 2 and done.stderr.count('\n') == 1
    assert '--verify-audit FILE... runs alone' in done.stderr
