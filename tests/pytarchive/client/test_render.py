"""How the answers look: the queue, the summary and the deleteable tables."""

import datetime as dt
import re

from pytarchive.client.protocol import Task
from pytarchive.client.render import deleteable_table, queue_table, summary_text, task_text


def _task(**changes):
    values = dict(
        id=7,
        kind='check',
        args={'barcode': 'TPN001L9'},
        state='running',
        error=None,
        result=None,
        bytes_done=0,
        bytes_total=None,
        files_done=0,
        files_total=None,
        attempts=1,
        created='2025-01-01T10:00:00+00:00',
        started=None,
        finished=None,
    )
    values.update(changes)
    return Task(**values)


def test_queue_table_shows_id_kind_arguments_state_drive_progress_age_and_errors():
    now = dt.datetime(2025, 1, 1, 12, 30, tzinfo=dt.timezone.utc)
    text = queue_table(
        [
            _task(bytes_done=1_500_000_000, bytes_total=18_000_000_000_000, files_done=12, files_total=4000, drive=1),
            _task(
                id=8,
                kind='scan',
                args={},
                state='failed',
                error='mtx: Drive 0 Full',
                created='2025-01-01T12:29:55+00:00',
            ),
            _task(id=9, kind='format', state='done', result='TPN001L9 formatted'),
        ],
        now=now,
    )
    assert text.splitlines() == [
        'ID  KIND    ARGUMENTS  STATE    DRIVE  PROGRESS                             AGE  RESULT',
        '7   check   TPN001L9   running  1      1.5 GB of 18.0 TB, 12 of 4000 files  2h   -',
        '8   scan    -          failed   -      -                                    5s   error: mtx: Drive 0 Full',
        '9   format  TPN001L9   done     -      -                                    2h   TPN001L9 formatted',
    ]
    assert queue_table([]) == 'the queue is empty'


def test_a_long_result_is_one_line_in_the_queue_and_whole_in_the_task():
    result = 'archived to TPN001L9 and verified: 6 files\n' + 'x' * 200
    text = queue_table([_task(state='done', result=result)], hidden=3)
    first, row, _, note = text.splitlines()
    assert row.endswith('…') and len(row) < 150
    assert note == '3 older finished tasks not shown: `pytarchive queue --all`; one whole: `pytarchive queue ID`'
    whole = task_text(_task(state='done', result=result, finished='2025-01-01T11:00:00+00:00'))
    assert 'x' * 200 in whole and whole.startswith('task 7: check TPN001L9\nstate:     done\ndrive:     -')


def test_a_running_task_shows_its_rate_and_the_time_left():
    now = dt.datetime(2025, 1, 1, 10, 1, 40, tzinfo=dt.timezone.utc)
    task = _task(bytes_done=1_000_000_000, bytes_total=3_000_000_000, started='2025-01-01T10:00:00+00:00')
    row = re.split(r'\s{2,}', queue_table([task], now=now).splitlines()[1])
    assert row[5] == '1.0 GB of 3.0 GB, 10.0 MB/s, 3m20s left'


def test_summary_lists_tapes_each_drive_with_its_task_and_counts():
    text = summary_text(
        [
            {
                'barcode': 'TPN001L9',
                'slot': 1,
                'state': 'formatted',
                'capacity': 200_000_000,
                'used': 50_000_000,
                'free': 150_000_000,
                'folders': 2,
                'seen': 'x',
                'checked': '2025-01-01T10:00:00+00:00',
            },
            {
                'barcode': 'TPN002L9',
                'slot': 2,
                'state': 'formatted',
                'capacity': 200_000_000,
                'used': 0,
                'free': 200_000_000,
                'folders': 0,
                'seen': 'x',
                'checked': '2025-01-01T10:00:00+00:00',
            },
            {
                'barcode': 'TPN009L9',
                'slot': None,
                'state': 'unknown',
                'capacity': None,
                'used': None,
                'free': None,
                'folders': 0,
                'seen': 'x',
                'checked': None,
            },
        ],
        [
            {'index': 0, 'serial': '10WT000000', 'tape': None, 'mounted': None, 'task': None},
            {
                'index': 1,
                'serial': '10WT000010',
                'tape': 'TPN002L9',
                'mounted': 'read-only',
                'task': {'id': 7, 'kind': 'restore', 'args': {'path': '/data/a b', 'force': True}},
            },
        ],
        {'done': 3, 'running': 1},
        {'archived': 2},
    )
    assert text.splitlines() == [
        'BARCODE   SLOT            STATE      CAPACITY  USED     FREE      FOLDERS  CHECKED                    FIXITY',
        'TPN001L9  1               formatted  200.0 MB  50.0 MB  150.0 MB  2        2025-01-01T10:00:00+00:00  -',
        'TPN002L9  drive 1         formatted  200.0 MB  0 B      200.0 MB  0        2025-01-01T10:00:00+00:00  -',
        'TPN009L9  not in library  unknown    -         -        -         0        -                          -',
        '',
        'drive 0 (serial 10WT000000): empty',
        "drive 1 (serial 10WT000010): TPN002L9, mounted read-only; task 7 restore '/data/a b' --force",
        'queue: 3 done, 1 running',
        'folders: 2 archived',
    ]
    empty = summary_text(
        [], [{'index': 0, 'serial': '10WT000000', 'tape': None, 'mounted': None, 'task': None}], {}, {}
    )
    assert empty.splitlines()[0] == 'no tapes known yet: run `pytarchive scan`'
    assert 'drive 0 (serial 10WT000000): empty' in empty
    copying = {'id': 9, 'kind': 'copy', 'args': {'path': '/data/x', 'barcode': 'TPN002L9', 'from_tape': True}}
    lent = summary_text(
        [],
        [
            {
                'index': 0,
                'serial': '10WT000000',
                'tape': 'TPN001L9',
                'mounted': 'read-only',
                'lent_to': 9,
                'task': copying,
            }
        ],
        {},
        {},
        {'wanted': 2, 'further': 3, 'short': 1},
    )
    assert (
        'drive 0 (serial 10WT000000): TPN001L9, mounted read-only; lent to task 9 copy /data/x TPN002L9 --from-tape'
    ) in lent.splitlines()
    assert lent.splitlines()[-1] == 'copies: 3 further copies archived; 1 folders have fewer than [General] copies = 2'


def test_deleteable_table_says_what_is_safe_to_delete():
    rows = [
        {
            'path': '/data/projects/Q3',
            'tape': 'TPN001L9',
            'source_bytes': 5_000_000,
            'file_count': 12,
            'verified': '2026-11-20T10:00:00+00:00',
            'packed': 0,
        },
        {
            'path': '/data/many files',
            'tape': 'TPN002L9',
            'source_bytes': 1_000_000,
            'file_count': 600_000,
            'verified': '2026-11-21T10:00:00+00:00',
            'packed': 1,
        },
    ]
    assert deleteable_table(rows).splitlines() == [
        'FOLDER             TAPES     SIZE    FILES   VERIFIED',
        '/data/projects/Q3  TPN001L9  5.0 MB  12      2026-11-20',
        '/data/many files   TPN002L9  1.0 MB  600000  2026-11-21  packed',
        '',
        '2 folders, 6.0 MB: archived and verified, safe to delete by hand (pytarchive never deletes originals)',
    ]
    assert deleteable_table([]) == 'nothing is archived and verified yet'
    # [General] copies = 2: each folder listed has its copies' tapes, and the line says what was asked.
    rows[0]['tapes'] = 'TPN001L9, TPN003L9'
    assert deleteable_table(rows[:1], copies=2).splitlines() == [
        'FOLDER             TAPES               SIZE    FILES  VERIFIED',
        '/data/projects/Q3  TPN001L9, TPN003L9  5.0 MB  12     2026-11-20',
        '',
        '1 folders, 5.0 MB: archived and verified on at least 2 tapes each ([General] copies), safe to delete by '
        'hand (pytarchive never deletes originals)',
    ]
    assert deleteable_table([], copies=2) == 'nothing is archived and verified yet on 2 tapes'
