"""The service with two drives, on the virtual library with the real LTFS: one task per drive at
once, never one tape in two drives, and a task waiting for a tape lets later ones go ahead."""

import json
import threading
import time

import pytest

from tests.pytarchive.rig import make_tree, queued_id, snapshot

TAPES = ('TPN001L9', 'TPN002L9')


def table_rows(text: str) -> list:
    """The rows of a table as `queue` prints it, each {column: value}, read by the header's column
    positions (a cell may hold spaces: the arguments, a progress text)."""
    header, *lines = text.splitlines()
    names = header.split()
    starts = [header.index(f' {name}') + 1 if index else 0 for index, name in enumerate(names)]
    ends = starts[1:] + [None]
    return [
        {name: line[start:end].strip() for name, start, end in zip(names, starts, ends)}
        for line in lines
        if line.strip() and not line.startswith(' ')
    ]


def _two_drives_formatted(make_rig):
    rig = make_rig(drives=2, tapes='TPN001L9,TPN002L9,TPN003L9')
    rig.start()
    formats = [queued_id(rig.ok('format', barcode)) for barcode in TAPES]
    rig.wait_for({task_id: {'done'} for task_id in formats}, timeout=120)
    return rig


@pytest.mark.root
@pytest.mark.slow
def test_two_archives_to_two_tapes_run_at_once_one_per_drive_and_both_end_verified(make_rig, tmp_path):
    rig = _two_drives_formatted(make_rig)
    sources = [make_tree(tmp_path / name) for name in ('first', 'second')]
    for source in sources:
        rig.ok('prepare', str(source), 'two drives', '--wait')
    # Each archive is stopped in its copy, with its tape mounted. The hold watches from before the
    # archives are queued: on a loaded machine a small archive can end before a second is queued.
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with rig.drive_held(every=True):
            held.set()
            release.wait(120)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        archives = [queued_id(rig.ok('archive', str(source), barcode)) for source, barcode in zip(sources, TAPES)]
        assert held.wait(60), rig.log.read_text()
        tasks = rig.tasks()
        assert [tasks[task_id]['state'] for task_id in archives] == ['running', 'running']
        assert sorted(tasks[task_id]['drive'] for task_id in archives) == [0, 1]
        summary = json.loads(rig.ok('summary', '--json'))
        # The tape and task of each drive ('mounted' may not be set yet: ltfs is held as it starts).
        held = {drive['tape']: drive['task']['id'] for drive in summary['drives']}
        assert held == dict(zip(TAPES, archives))
        assert [rig.drive(index).full for index in (0, 1)] == [True, True]
        text = rig.ok('summary')
        for drive in summary['drives']:
            line = next(line for line in text.splitlines() if line.startswith(f'drive {drive["index"]} '))
            assert line.startswith(f'drive {drive["index"]} (serial {drive["serial"]}): {drive["tape"]}, ')
            assert f'; task {drive["task"]["id"]} archive ' in line
        queue = rig.ok('queue')
        running = {(row['ID'], row['DRIVE']) for row in table_rows(queue) if row['STATE'] == 'running'}
        assert running == {(str(task_id), str(tasks[task_id]['drive'])) for task_id in archives}, queue
    finally:
        release.set()
        holder.join()

    ended = rig.wait_for({task_id: {'done', 'failed'} for task_id in archives}, timeout=180)
    for task_id, source, barcode in zip(archives, sources, TAPES):
        assert ended[task_id]['state'] == 'done', ended[task_id]
        assert f'archived to {barcode}' in ended[task_id]['result'] and 'verified' in ended[task_id]['result']
    assert [rig.drive(index).full for index in (0, 1)] == [False, False]  # every tape back home
    assert rig.stop() == 0
    for source, barcode in zip(sources, TAPES):
        on_tape = rig.volume(barcode)
        assert any(path.endswith('sub dir/a file.bin') and size == 300_000 for path, size in on_tape.items())


@pytest.mark.root
@pytest.mark.slow
def test_a_restore_waits_for_its_tape_held_on_the_other_drive_while_a_task_on_another_tape_runs(make_rig, tmp_path):
    rig = _two_drives_formatted(make_rig)
    kept, more = make_tree(tmp_path / 'kept'), make_tree(tmp_path / 'more')
    before = snapshot(kept)
    rig.ok('prepare', str(kept), 'kept', '--wait')
    rig.ok('archive', str(kept), TAPES[0], '--wait')
    rig.ok('prepare', str(more), 'more', '--wait')
    archive = queued_id(rig.ok('archive', str(more), TAPES[0]))

    with rig.drive_held(drive=None):  # the archive holds TPN001L9 on one drive
        restore = queued_id(rig.ok('restore', str(kept), '--to', str(tmp_path / 'restored')))
        check = queued_id(rig.ok('check', TAPES[1]))
        tasks = rig.wait_for({check: {'done'}}, timeout=120)  # on the other drive, past the waiting restore
        assert tasks[restore]['state'] == 'queued' and tasks[restore]['started'] is None
        assert tasks[archive]['state'] == 'running'
        assert tasks[check]['drive'] != tasks[archive]['drive']

    ended = rig.wait_for({archive: {'done', 'failed'}, restore: {'done', 'failed'}}, timeout=180)
    assert ended[archive]['state'] == 'done' and ended[restore]['state'] == 'done', ended
    assert ended[restore]['started'] >= ended[archive]['finished']  # never both on TPN001L9 at once
    assert snapshot(tmp_path / 'restored') == before


@pytest.mark.root
@pytest.mark.slow
def test_start_and_stop_empty_every_drive(make_rig):
    rig = make_rig(drives=2)
    rig._mtx('load', '1', '0')  # tapes left in both drives, as a power cut would leave them
    rig._mtx('load', '2', '1')
    assert [rig.drive(index).full for index in (0, 1)] == [True, True]
    rig.start()
    deadline = time.monotonic() + 60
    while any(rig.drive(index).full for index in (0, 1)):
        assert time.monotonic() < deadline, rig.log.read_text()
        time.sleep(0.1)
    summary = json.loads(rig.ok('summary', '--json'))
    assert [(drive['index'], drive['tape'], drive['task']) for drive in summary['drives']] == [
        (0, None, None),
        (1, None, None),
    ]
    rig.freeze()  # idle; tapes put in both drives behind its back, then a stop
    rig._mtx('load', '1', '0')
    rig._mtx('load', '2', '1')
    rig.thaw()
    assert rig.stop() == 0
    assert [rig.drive(index).full for index in (0, 1)] == [False, False]
