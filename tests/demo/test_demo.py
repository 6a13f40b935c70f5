"""`make demo` runs end to end with no standard input: against the emulated cluster, and for
pytarchive against the virtual tape library, which runs the real LTFS and the real mtx."""

import pathlib
import re
import subprocess
import sys

import pytest

PROJECT = pathlib.Path(__file__).resolve().parents[2]
# The pytarchive step formats and mounts tapes of the virtual library (root), and the whole tour
# takes about 20 s.
pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_demo_shows_events_locks_handles_and_the_watcher():
    done = subprocess.run(
        [sys.executable, '-m', 'demo'],
        cwd=PROJECT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert 'logged in as admin' in out
    assert 'child_file_moved_to    Q4-final.xlsx' in out
    assert "'retention_period': '2031-12-31T00:00:00Z'" in out
    assert 'shorten its retention: refused, 400' in out and 'delete it: refused, 403' in out
    assert '/finance/Q3.xlsx        alice' in out
    assert 'audit: locked          /records/2026/trades.csv' in out
    assert 'audit: locked          /records/statement.pdf' in out
    assert '4 files, 3 locked, 1 not locked' in out
    assert '7. qumulo_lock_manager.py lists SMB file handles' in out
    assert 'closed /finance/budget-2027.xlsx (alice from 10.0.0.5' in out
    assert 'lacks the privilege PRIVILEGE_SMB_FILE_HANDLE_WRITE' in out
    assert '8. pytarchive: the service on a virtual library' in out
    # The real tape software at work: LTFS's version, the real mtx's status, mkltfs's own messages.
    assert re.search(r'^   LTFS version \d+\.\d+\.\d+.*: the real mkltfs and ltfs', out, re.MULTILINE)
    assert re.search(r'^   mtx version \d+\.\d+\.\d+ \(/usr/sbin/mtx\)', out, re.MULTILINE)
    assert re.search(r'Storage Changer \S+/library/dev/sch0:1 Drives, 6 Slots \( 0 Import/Export \)', out)
    assert 'Storage Element 3:Full :VolumeTag=CLN001L1' in out
    assert 'LTFS15013I Volume UUID is: ' in out
    assert 'LTFS15024I Medium formatted successfully.' in out
    assert 'never uses cleaning tapes' in out
    assert "field survey 2026' prepared: 6 files, 1.0 MB" in out or 'field survey 2026 prepared: 6 files' in out
    assert 'TPN001L9 as tmp/' in out and 'and verified: 6 files, 1.0 MB' in out
    assert 'TPN001L9  1     formatted' in out and 'folders: 1 archived' in out
    assert 'safe to delete by hand' in out
    # explore through the exportfs stand-in: the tape's copy of the folder exported read-only, then ended.
    assert re.search(r'^     \S+/library/mnt/tmp/.+\t127\.0\.0\.1\(ro\)$', out, re.MULTILINE), out
    assert 'ending explore (task' in out
    assert 'restored copy identical to the original (9 entries compared)' in out
    assert (
        'service stopped (exit 0); mtx status: Data Transfer Element 0:Empty, Storage Element 1:Full :VolumeTag=TPN001L9'
        in out
    )
    assert 'Traceback' not in done.stderr
