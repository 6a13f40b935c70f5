"""sim/exportfs.py, the exportfs stand-in: exports recorded, listed and removed as exportfs(8)
does them, with its errors and exit status."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def exportfs(table, *args):
    return subprocess.run(
        [sys.executable, '-m', 'sim.exportfs', '--table', str(table), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )


def test_an_export_is_listed_until_it_is_unexported(tmp_path):
    table, shared = tmp_path / 'exports.json', tmp_path / 'tape'
    shared.mkdir()
    assert exportfs(table, '-o', 'ro,fsid=1', f'10.1.0.0/16:{shared}/').returncode == 0
    assert exportfs(table, '-o', 'ro', f'10.1.0.0/16:{shared}').returncode == 0  # the same export, new options
    assert exportfs(table, '-v').stdout == f'{shared}\t10.1.0.0/16(ro)\n'
    assert exportfs(table, '-u', f'10.1.0.0/16:{shared}').returncode == 0
    assert exportfs(table).stdout == ''


def test_what_exportfs_refuses_is_refused_the_same_way(tmp_path):
    table = tmp_path / 'exports.json'
    missing = exportfs(table, '-o', 'ro', f'*:{tmp_path / "absent"}')
    assert (missing.returncode, missing.stderr) == (
        1,
        f'exportfs: Failed to stat {tmp_path / "absent"}: No such file or directory\n',
    )
    gone = exportfs(table, '-u', f'*:{tmp_path}')
    assert (gone.returncode, gone.stderr) == (1, f"exportfs: Could not find '*:{tmp_path}' to unexport.\n")
    bad = exportfs(table, '-o', 'ro', 'no-colon-here')
    assert (bad.returncode, bad.stderr) == (1, 'exportfs: Invalid export syntax: no-colon-here\n')
