"""`pytarchive verify` (fixity): a tape's archives re-read against their checksums, end to end on the
virtual library; a byte gone bad on the tape found and named, the archive no longer deleteable; the
schedule that queues the checks ([General] verify_every_days)."""

import json

import pytest

from pytarchive.service.commands import Commands
from pytarchive.state import tapes
from pytarchive.taskqueue import QueueApi
from pytarchive.tasks import REGISTRY
from tests.pytarchive.rig import TAPE, archived, formatted_rig, make_tree, sim_fault


@pytest.mark.root
@pytest.mark.slow
def test_a_tape_re_read_matches_until_a_byte_goes_bad_then_names_it(make_rig, tmp_path):
    rig = formatted_rig(make_rig)
    folder = make_tree(tmp_path / 'kept')
    archived(rig, folder)
    good = rig.ok('verify', TAPE, '--wait')
    assert f'1 archives on {TAPE}: 4 files' in good and 're-read and matching their checksums' in good
    [tape] = [t for t in json.loads(rig.ok('summary', '--json'))['tapes'] if t['barcode'] == TAPE]
    assert tape['fixity_result'] == 'ok' and tape['fixity_checked']
    assert rig.ok('summary').splitlines()[1].rstrip().endswith(' ok')  # the FIXITY column
    assert rig.drive().barcode is None and not rig.mounted()

    sim_fault(rig, 'flip-byte', TAPE, str(folder).lstrip('/') + '/sub dir/a file.bin')
    bad = rig.client('verify', str(folder), '--wait')
    assert bad.returncode == 1 and 'no longer match their checksums' in bad.stderr
    assert 'sub dir/a file.bin: checksum differs' in bad.stderr and 'keep the originals' in bad.stderr
    assert rig.ok('deleteable').startswith('nothing is archived')  # its copy on tape is not what was archived
    refused = rig.client('verify', 'TPN002L9')
    assert refused.returncode == 1 and 'TPN002L9 holds no archived folder to verify' in refused.stderr


def test_the_schedule_queues_a_check_of_each_tape_due_once(storage, db):
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO tapes (barcode, fixity_checked) VALUES ('TPN001L9', NULL), ('TPN002L9', ?)",
            ('2999-01-01T00:00:00+00:00',),
        )
        conn.execute("INSERT INTO tapes (barcode) VALUES ('TPN003L9')")  # no archive on it: nothing to check
        for tape in ('TPN001L9', 'TPN002L9'):
            conn.execute(
                "INSERT INTO folders (path, tape, state, created) VALUES (?, ?, 'archived', '2026-01-01T00:00:00+00:00')",
                (f'/data/{tape}', tape),
            )
    commands = Commands(QueueApi(storage, REGISTRY), db)
    assert tapes.fixity_due(db, 30) == ['TPN001L9']  # TPN002L9 was checked recently
    [queued] = commands.queue_due_fixity(30)
    assert storage.get(queued).kind == 'verify' and storage.get(queued).args == {'barcode': 'TPN001L9'}
    assert commands.queue_due_fixity(30) == []  # already queued: not twice
