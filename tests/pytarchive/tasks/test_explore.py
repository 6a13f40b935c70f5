"""explore (read-only NFS export of an archived folder's tape), end to end through the service.
exportfs is a configured command: here sim/exportfs.py, the stand-in that records the exports in a
table the tests list, as `exportfs -v` lists the kernel's."""

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from tests.pytarchive.rig import PYTHON, REPO, TAPE, archived, formatted_rig, make_tree, queued_id

pytestmark = [pytest.mark.root, pytest.mark.slow]  # the virtual library mounts its tapes; each takes seconds to minutes


def stand_in_exportfs(tmp_path: Path) -> str:
    """The [Export] exportfs command line of sim/exportfs.py, keeping its table in tmp_path."""
    return f'env PYTHONPATH={REPO} {PYTHON} -m sim.exportfs --table {tmp_path / "exports.json"}'


def exports(command: str) -> list:
    done = subprocess.run(shlex.split(command), capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def mount_options(mountpoint: str) -> list:
    with open('/proc/self/mounts') as mounts:
        for line in mounts:
            fields = line.split()
            if fields[1] == mountpoint:
                return fields[3].split(',')
    return []


def test_explore_exports_the_tape_read_only_until_stopped(make_rig, tmp_path):
    exportfs = stand_in_exportfs(tmp_path)
    rig = formatted_rig(make_rig, extra=f'[Export]\nto = 10.1.0.0/16\nsettings = ro,fsid=1\nexportfs = {exportfs}\n')
    folder = make_tree(tmp_path / 'lab results')
    archived(rig, folder)

    assert rig.ok('explore', '--stop').strip() == 'nothing is being explored'
    task_id = queued_id(rig.ok('explore', str(folder)))
    deadline = time.monotonic() + 30
    while not (exports(exportfs) and rig.tasks()[task_id]['step']):
        assert time.monotonic() < deadline, rig.tasks()[task_id]
        time.sleep(0.1)
    exported = f'{rig.mountpoint}/{str(folder).lstrip("/")}'
    assert exports(exportfs) == [f'{exported}\t10.1.0.0/16(ro,fsid=1)']
    assert 'ro' in mount_options(rig.mountpoint)
    assert sorted(os.listdir(exported)) == sorted(os.listdir(folder))
    summary = json.loads(rig.ok('summary', '--json'))
    [drive] = summary['drives']
    assert (drive['tape'], drive['mounted'], drive['task']['kind']) == (TAPE, 'read-only', 'explore')
    assert 'exported 10.1.0.0/16:' in rig.ok('queue')

    assert 'ending explore' in rig.ok('explore', '--stop')
    tasks = rig.wait_for({task_id: {'done'}})
    assert 'ended by explore --stop' in tasks[task_id]['result']
    assert exports(exportfs) == []  # unexported
    assert not rig.mounted() and rig.drive().barcode is None


def test_an_exportfs_that_is_not_there_is_named_by_its_section(make_rig, tmp_path):
    rig = formatted_rig(make_rig, extra=f'[Export]\nto = 10.1.0.0/16\nexportfs = {tmp_path / "no-exportfs"}\n')
    folder = make_tree(tmp_path / 'lab results')
    archived(rig, folder)
    failed = rig.client('explore', str(folder), '--wait')
    assert failed.returncode == 1 and 'not found (check exportfs in the [Export] config)' in failed.stderr
    assert '[Device]' not in failed.stderr
    assert not rig.mounted() and rig.drive().barcode is None
