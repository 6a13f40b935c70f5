"""explore (read-only NFS export of an archived folder's tape), end to end through the service.
exportfs is a configured command: here a script that records its arguments, so the tests see the
exact exports made."""

import json
import os
import time
from pathlib import Path

import pytest

from tests.pytarchive.rig import TAPE, archived, formatted_rig, make_tree, queued_id

pytestmark = [pytest.mark.root, pytest.mark.slow]  # the virtual library mounts its tapes; each takes seconds to minutes


def recording_exportfs(tmp_path: Path) -> tuple:
    log = tmp_path / 'exportfs.log'
    script = tmp_path / 'exportfs'
    script.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\n')
    script.chmod(0o755)
    return script, log


def mount_options(mountpoint: str) -> list:
    with open('/proc/self/mounts') as mounts:
        for line in mounts:
            fields = line.split()
            if fields[1] == mountpoint:
                return fields[3].split(',')
    return []


def test_explore_exports_the_tape_read_only_until_stopped(make_rig, tmp_path):
    exportfs, log = recording_exportfs(tmp_path)
    rig = formatted_rig(make_rig, extra=f'[Export]\nto = 10.1.0.0/16\nsettings = ro,fsid=1\nexportfs = {exportfs}\n')
    folder = make_tree(tmp_path / 'lab results')
    archived(rig, folder)

    assert rig.ok('explore', '--stop').strip() == 'nothing is being explored'
    task_id = queued_id(rig.ok('explore', str(folder)))
    deadline = time.monotonic() + 30
    while not (log.exists() and rig.tasks()[task_id]['step']):
        assert time.monotonic() < deadline, rig.tasks()[task_id]
        time.sleep(0.1)
    exported = f'{rig.mountpoint}/{str(folder).lstrip("/")}'
    assert log.read_text() == f'-o ro,fsid=1 10.1.0.0/16:{exported}\n'
    assert 'ro' in mount_options(rig.mountpoint)
    assert sorted(os.listdir(exported)) == sorted(os.listdir(folder))
    summary = json.loads(rig.ok('summary', '--json'))
    assert summary['drive']['tape'] == TAPE and summary['drive']['mounted'] == 'read-only'
    assert 'exported 10.1.0.0/16:' in rig.ok('queue')

    assert 'ending explore' in rig.ok('explore', '--stop')
    tasks = rig.wait_for({task_id: {'done'}})
    assert 'ended by explore --stop' in tasks[task_id]['result']
    assert log.read_text().splitlines()[-1] == f'-u 10.1.0.0/16:{exported}'
    assert not rig.mounted() and rig.drive().barcode is None
