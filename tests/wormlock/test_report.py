"""`--report PATH --audit-log FILE [--matter NAME]`: what each legal-hold matter holds, read from
the audit log (and the files logrotate rotated it into), since the cluster keeps no matter. The
holds are set by real watchers against the emulator; the report is the real qfs_filelock.py.
(The report's other columns and filters: test_cli.py.)
"""

import csv
import gzip
import io
import json
import os
import shutil

import pytest

from tests.wormlock.rig import Watcher, run_tool, wait_for


def hold_with_watcher(sim, tmp_path, directory, matter, paths):
    watcher = Watcher(sim, tmp_path, directory, '--legal-hold', matter)
    assert wait_for(lambda: set(paths) <= {r['path'] for r in watcher.records()}, 20), watcher.records()
    watcher.stop()
    return watcher.audit


@pytest.fixture
def held(sim, tmp_path):
    """/held: CASE-A holds a/one.txt and a/shared/two.txt, CASE-B b/three.txt and (again)
    a/shared/two.txt; manual.txt is held by hand (no matter), open.txt not at all. The audit log
    of CASE-A's watcher was rotated (gzipped) before the others wrote theirs."""
    root = sim.root / 'held'
    for name in ('a/one.txt', 'a/shared/two.txt', 'b/three.txt', 'manual.txt', 'open.txt'):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    sim.client().fs.modify_file_lock(path='/held/manual.txt', legal_hold=True)
    audit = hold_with_watcher(sim, tmp_path, '/held/a', 'CASE-A', ['/held/a/one.txt', '/held/a/shared/two.txt'])
    with open(audit, 'rb') as source, gzip.open(f'{audit}.1.gz', 'wb') as target:
        shutil.copyfileobj(source, target)  # logrotate: copytruncate, compress
    os.truncate(audit, 0)
    hold_with_watcher(sim, tmp_path, '/held/b', 'CASE-B', ['/held/b/three.txt'])
    hold_with_watcher(sim, tmp_path, '/held/a/shared', 'CASE-B', ['/held/a/shared/two.txt'])
    return tmp_path / 'qfs_filelock_config-admin.ini', audit


def report(config, *args):
    done = run_tool('--config-file', config, '--report', '/held', *args)
    assert (done.returncode, done.stderr) == (0, ''), done.stderr
    return done.stdout


def test_the_matter_column_lists_each_files_matters_from_the_audit_log_and_its_rotated_files(held):
    config, audit = held
    files = {f['path']: f for f in json.loads(report(config, '--audit-log', audit, '--json'))['files']}
    assert {path: f['matter'] for path, f in files.items()} == {
        '/held/a/one.txt': ['CASE-A'],  # from audit.jsonl.1.gz
        '/held/a/shared/two.txt': ['CASE-A', 'CASE-B'],
        '/held/b/three.txt': ['CASE-B'],
        '/held/manual.txt': [],  # held, but not by this tool: the cluster keeps no matter
        '/held/open.txt': [],
    }
    assert files['/held/manual.txt']['legal_hold'] is True
    table = report(config, '--audit-log', audit).splitlines()
    assert table[0].split()[-2:] == ['matter', 'unlockable']
    rows = {line.split()[0]: line for line in table[2:-1]}
    assert rows['/held/a/shared/two.txt'].endswith('CASE-A, CASE-B')
    assert 'matter' not in json.loads(report(config, '--json'))['files'][0]  # no audit log: no column


def test_matter_lists_what_a_matter_holds(held):
    config, audit = held
    table = report(config, '--audit-log', audit, '--matter', 'CASE-A').splitlines()
    assert [line.split()[0] for line in table[2:-1]] == ['/held/a/one.txt', '/held/a/shared/two.txt']
    assert table[-1] == '2 files, 2 locked, 0 not locked'
    rows = list(csv.DictReader(io.StringIO(report(config, '--audit-log', audit, '--matter', 'CASE-B', '--csv'))))
    assert [(r['path'], r['matter']) for r in rows] == [
        ('/held/a/shared/two.txt', 'CASE-A\nCASE-B'),  # one cell, a matter a line
        ('/held/b/three.txt', 'CASE-B'),
    ]
    assert report(config, '--audit-log', audit, '--matter', 'CASE-NONE').splitlines()[-1] == (
        '0 files, 0 locked, 0 not locked'
    )


def test_a_matter_whose_hold_was_taken_off_still_lists_the_file_not_held(sim, held):
    config, audit = held
    sim.client().fs.modify_file_lock(path='/held/b/three.txt', legal_hold=False)  # an administrator, not the tool
    files = json.loads(report(config, '--audit-log', audit, '--matter', 'CASE-B', '--json'))['files']
    three = next(f for f in files if f['path'] == '/held/b/three.txt')
    assert (three['legal_hold'], three['matter']) == (False, ['CASE-B'])


# fmt: off
BAD_REPORTS = {
    'matter-without-audit-log': (['--report', '/drop', '--matter', 'CASE-A'], '--matter needs --audit-log FILE'),
    'matter-while-watching': (['--directory-path', '/drop', '--legal-hold', '--matter', 'CASE-A'],
                              '--matter only go with --report PATH'),
    'bad-matter': (['--report', '/drop', '--audit-log', '{audit}', '--matter', 'CASE\tA'], '--matter: a matter is'),
    'missing-audit-log': (['--report', '/drop', '--audit-log', '{tmp}/gone.jsonl', '--matter', 'CASE-A'],
                          '--audit-log {tmp}/gone.jsonl: cannot read it: No such file or directory'),
}
# fmt: on


@pytest.mark.parametrize('case', list(BAD_REPORTS))
def test_a_bad_matter_report_is_one_line_and_exit_2(case, sim, tmp_path):
    args, words = BAD_REPORTS[case]
    audit = tmp_path / 'audit.jsonl'
    audit.write_text('')
    config = sim.write_config(tmp_path / 'qfs_filelock_config.ini')
    values = {'tmp': tmp_path, 'audit': audit}
    done = run_tool('--config-file', config, *[a.format(**values) for a in args])
    assert done.returncode == 2, done.stderr
    assert done.stderr.count('\n') == 1 and done.stderr.startswith('qfs_filelock.py: error: '), done.stderr
    assert words.format(**values) in done.stderr
    assert done.stdout == ''


def test_files_the_watcher_may_not_lock_are_shown_unlockable_until_a_later_scan_locks_them(sim, tmp_path):
    # root's files, 0644, as written over SMB by someone else: the least-privilege locker may
    # read them but not lock them; one is then given to it, and the next scan locks it.
    (sim.root / 'smb').mkdir()
    for name in ('a.pdf', 'b.pdf'):
        (sim.root / 'smb' / name).write_text(name)
    watcher = Watcher(sim, tmp_path, '/smb', '--rescan-every', '1', user='locker', recursive=False)
    assert wait_for(
        lambda: {r['path'] for r in watcher.records() if r['result'] == 'failed'} >= {'/smb/a.pdf', '/smb/b.pdf'}, 20
    )
    config = sim.write_config(tmp_path / 'admin.ini')
    rows = list(
        csv.DictReader(
            io.StringIO(
                run_tool('--config-file', config, '--report', '/smb', '--csv', '--audit-log', watcher.audit).stdout
            )
        )
    )
    assert {r['path']: 'WRITE_ACL' in r['unlockable'] for r in rows} == {'/smb/a.pdf': True, '/smb/b.pdf': True}
    table = run_tool('--config-file', config, '--report', '/smb', '--audit-log', watcher.audit).stdout
    assert table.splitlines()[-1] == '2 files, 0 locked, 2 not locked, 2 the watcher may not lock'
    sim.control('fs/permissions', {'path': '/smb/a.pdf', 'owner': 'locker'})
    assert wait_for(lambda: '/smb/a.pdf' in watcher.locked_paths(), 20)  # retried by a later scan
    watcher.stop()
    rows = list(
        csv.DictReader(
            io.StringIO(
                run_tool('--config-file', config, '--report', '/smb', '--csv', '--audit-log', watcher.audit).stdout
            )
        )
    )
    assert {r['path']: bool(r['unlockable']) for r in rows} == {'/smb/a.pdf': False, '/smb/b.pdf': True}


def test_csv_and_json_are_written_as_the_rows_are_read():
    # A tree of any size is reported in constant memory: each row goes out before the next is
    # read, so a walk cut short has already written what it read.
    from wormlock.report import COLUMNS, write_csv, write_json

    def rows_then_a_fault():
        for n in range(2):
            yield {c: None for c in COLUMNS} | {'path': f'/t/f{n}', 'file_id': str(n), 'locked': False}
        raise RuntimeError('the cluster went away mid-walk')

    for writer in (write_csv, write_json):
        out = io.StringIO()
        with pytest.raises(RuntimeError):
            writer(rows_then_a_fault(), out)
        assert '/t/f0' in out.getvalue() and '/t/f1' in out.getvalue(), writer.__name__


def test_json_says_at_its_end_whether_the_report_is_complete():
    from wormlock.report import COLUMNS, NOT_LISTED, write_json

    row = {c: None for c in COLUMNS} | {'path': '/t/closed/', 'file_id': '9', 'unreadable': NOT_LISTED + '403'}
    out = io.StringIO()
    write_json(iter([row]), out)
    document = json.loads(out.getvalue())
    assert document['complete'] is False and document['files'][0]['path'] == '/t/closed/'
