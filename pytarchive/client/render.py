"""Tables for people: the queue and the library summary as the client prints them."""

import datetime as dt
import shlex
from typing import Any, Dict, List, Optional, Sequence

from pytarchive.client.protocol import RUNNING, Task
from pytarchive.units import age, human_bytes


def table(headers: Sequence[str], rows: List[Sequence[str]], notes: Optional[Dict[int, str]] = None) -> str:
    """Left-aligned columns; notes[i] is printed indented under row i (e.g. a task's error)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ['  '.join(str(cell).ljust(width) for cell, width in zip(headers, widths)).rstrip()]
    for index, row in enumerate(rows):
        lines.append('  '.join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
        if notes and index in notes:
            lines.append(f'    {notes[index]}')
    return '\n'.join(lines)


def arguments_text(args: Dict[str, Any]) -> str:
    """A task's arguments as the command line that queued it would show them (paths quoted)."""
    shown = dict(args)
    if args.get('more_tapes'):  # a folder archived in parts: its tapes as the command named them
        shown['barcode'] = ','.join([args['barcode'], *args['more_tapes']])
    parts = [shlex.quote(str(shown[key])) for key in ('path', 'barcode', 'description') if shown.get(key)]
    parts += [f'--{key} {shlex.quote(str(args[key]))}' for key in ('to', 'only') if args.get(key)]
    parts += [f'--{key.replace("_", "-")}' for key in ('force', 'json', 'from_tape') if args.get(key) is True]
    return ' '.join(parts)


def _arguments(task: Task) -> str:
    return arguments_text(task.args) or '-'


def progress_text(task: Task, now: Optional[dt.datetime] = None) -> str:
    parts = []
    if task.bytes_total or task.bytes_done:
        total = f' of {human_bytes(task.bytes_total)}' if task.bytes_total is not None else ''
        parts.append(f'{human_bytes(task.bytes_done)}{total}')
    if task.files_total or task.files_done:
        total = f' of {task.files_total}' if task.files_total is not None else ''
        parts.append(f'{task.files_done}{total} files')
    if task.state == RUNNING:
        parts += _pace(task, now)
    shown = ', '.join(parts) or '-'
    return f'{task.step}: {shown}' if task.step and task.state == RUNNING else shown


def _pace(task: Task, now: Optional[dt.datetime]) -> List[str]:
    """The rate since the task started and the time left at that rate, once both can be told."""
    if not task.started or not task.bytes_done:
        return []
    now = now or dt.datetime.now(dt.timezone.utc)
    seconds = (now - dt.datetime.fromisoformat(task.started)).total_seconds()
    if seconds < 1:
        return []
    rate = task.bytes_done / seconds
    pace = [f'{human_bytes(int(rate))}/s']
    if task.bytes_total and task.bytes_total > task.bytes_done:
        pace.append(f'{_duration((task.bytes_total - task.bytes_done) / rate)} left')
    return pace


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f'{seconds}s'
    if seconds < 3600:
        return f'{seconds // 60}m{seconds % 60:02d}s'
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'


SUMMARY_CHARS = 70  # a result or error in the queue's one line; `pytarchive queue ID` shows it whole


def one_line_of(text: Optional[str], limit: int = SUMMARY_CHARS) -> str:
    line = ' '.join((text or '').split())
    return line if len(line) <= limit else line[: limit - 1] + '…'


def queue_table(tasks: List[Task], now: Optional[dt.datetime] = None, hidden: int = 0) -> str:
    """One line a task: what it is, where it stands, and its result or error cut to one line."""
    if not tasks:
        return 'the queue is empty' + (f' ({hidden} older finished tasks: `pytarchive queue --all`)' if hidden else '')
    rows = [
        (
            str(task.id),
            task.kind,
            one_line_of(_arguments(task), 60),
            task.state,
            _drive_of(task),
            progress_text(task, now),
            age(task.created, now),
            one_line_of(f'error: {task.error}' if task.error else task.result) or '-',
        )
        for task in tasks
    ]
    text = table(('ID', 'KIND', 'ARGUMENTS', 'STATE', 'DRIVE', 'PROGRESS', 'AGE', 'RESULT'), rows)
    if hidden:
        text += (
            f'\n\n{hidden} older finished tasks not shown: `pytarchive queue --all`; one whole: `pytarchive queue ID`'
        )
    return text


def _drive_of(task: Task) -> str:
    """The drive that runs (or ran) the task; '-' for one that never ran."""
    return str(task.drive) if task.drive is not None else '-'


def task_text(task: Task, now: Optional[dt.datetime] = None) -> str:
    """One task whole: `pytarchive queue ID`."""
    lines = [
        f'task {task.id}: {task.kind} {_arguments(task)}',
        f'state:     {task.state}' + (f' ({task.step})' if task.step and task.state == RUNNING else ''),
        f'drive:     {_drive_of(task)}',
        f'progress:  {progress_text(task, now)}',
        f'queued:    {task.created}',
        f'started:   {task.started or "-"}',
        f'finished:  {task.finished or "-"}',
        f'attempts:  {task.attempts}',
    ]
    if task.result:
        lines += ['result:', *(f'  {line}' for line in task.result.splitlines())]
    if task.error:
        lines += ['error:', *(f'  {line}' for line in task.error.splitlines())]
    return '\n'.join(lines)


def _slot(tape: Dict[str, Any], drives: List[Dict[str, Any]]) -> str:
    for drive in drives:
        if drive.get('tape') == tape['barcode']:
            return f'drive {drive["index"]}'
    return str(tape['slot']) if tape['slot'] is not None else 'not in library'


def _drive_line(drive: Dict[str, Any]) -> str:
    """`drive 0 (serial S): TAPE, mounted read-only; task 7 restore /x`: one line per drive in the summary."""
    held = (
        f'{drive["tape"]}, ' + (f'mounted {drive["mounted"]}' if drive['mounted'] else 'not mounted')
        if drive['tape']
        else 'empty'
    )
    task = drive.get('task')
    which = 'lent to task' if drive.get('lent_to') else 'task'
    running = f'; {which} {task["id"]} {task["kind"]} {arguments_text(task["args"])}'.rstrip() if task else ''
    return f'drive {drive["index"]} (serial {drive["serial"]}): {held}{running}'


def summary_text(
    tapes: List[Dict[str, Any]],
    drives: List[Dict[str, Any]],
    queue_counts: Dict[str, int],
    folder_counts: Dict[str, int],
    copies: Optional[Dict[str, int]] = None,
) -> str:
    """copies: further copies archived, and with [General] copies above 1, the folders short of it."""
    if tapes:
        rows = [
            (
                tape['barcode'],
                _slot(tape, drives),
                tape['state'],
                human_bytes(tape['capacity']),
                human_bytes(tape['used']),
                human_bytes(tape['free']),
                str(tape['folders']),
                tape['checked'] or '-',
                _fixity(tape),
            )
            for tape in tapes
        ]
        tape_part = table(
            ('BARCODE', 'SLOT', 'STATE', 'CAPACITY', 'USED', 'FREE', 'FOLDERS', 'CHECKED', 'FIXITY'), rows
        )
    else:
        tape_part = 'no tapes known yet: run `pytarchive scan`'
    drive_part = '\n'.join(map(_drive_line, drives)) or 'drives: unknown'
    queue_part = ', '.join(f'{count} {state}' for state, count in queue_counts.items()) or 'empty'
    folder_part = ', '.join(f'{count} {state}' for state, count in folder_counts.items()) or 'none yet'
    text = f'{tape_part}\n\n{drive_part}\nqueue: {queue_part}\nfolders: {folder_part}'
    if copies and (copies['further'] or copies['wanted'] > 1):
        text += f'\ncopies: {copies["further"]} further copies archived'
        if copies['wanted'] > 1:
            text += f'; {copies["short"]} folders have fewer than [General] copies = {copies["wanted"]}'
    return text


def _fixity(tape: Dict[str, Any]) -> str:
    """When the tape's archives were last re-read against their checksums, and how it went."""
    if not tape.get('fixity_checked'):
        return '-'
    return f'{tape["fixity_checked"][:10]} {tape["fixity_result"]}'


def deleteable_table(rows: List[Dict[str, Any]], copies: int = 1) -> str:
    """copies: the sound copies [General] copies asks of each folder before it is listed."""
    if not rows:
        return 'nothing is archived and verified yet' + (f' on {copies} tapes' if copies > 1 else '')
    lines = [
        (
            row['path'],
            row.get('tapes') or row['tape'],
            human_bytes(row['source_bytes']),
            str(row['file_count']),
            (row['verified'] or '')[:10],
            'packed' if row['packed'] else '',
        )
        for row in rows
    ]
    total = sum(row['source_bytes'] or 0 for row in rows)
    return (
        table(('FOLDER', 'TAPES', 'SIZE', 'FILES', 'VERIFIED', ''), lines)
        + f'\n\n{len(rows)} folders, {human_bytes(total)}: archived and verified'
        + (f' on at least {copies} tapes each ([General] copies)' if copies > 1 else '')
        + ', safe to delete by hand (pytarchive never deletes originals)'
    )


def _date(moment: Optional[str]) -> str:
    return (moment or '')[:10] or '-'


def find_table(entries: List[Dict[str, Any]], more: bool, limit: int) -> str:
    """Where each matching entry is: its tape, the archive's state and date, size and checksum."""
    if not entries:
        return 'nothing in the catalog matches'
    rows = [
        (
            entry['path'] + ('/' if entry['kind'] == 'dir' else ''),
            ', '.join(entry.get('tapes') or [entry['tape']]),
            entry['state'],
            _date(entry['archived']),
            human_bytes(entry['size']) if entry['kind'] == 'file' else entry['kind'],
            (entry['checksum'] or '-')[:16],
        )
        for entry in entries
    ]
    text = table(('PATH', 'TAPE', 'STATE', 'ARCHIVED', 'SIZE', 'BLAKE3'), rows)
    shown = f'{len(entries)} entries' + (
        f' (the first {limit}; more match: narrow the pattern or --limit)' if more else ''
    )
    return f'{text}\n\n{shown}'


def tape_contents(barcode: str, held: List[Dict[str, Any]]) -> str:
    if not held:
        return f'{barcode} holds no archive in the catalog'
    rows = [
        (
            folder['path'],
            folder['state'],
            str(folder['file_count'] if folder['file_count'] is not None else '-'),
            human_bytes(folder['source_bytes']),
            _date(folder['archived']),
            _date(folder['verified']),
            str(folder.get('copy_number') or 1),
            folder.get('part') or '-',
            folder['tape_path'] or '-',
        )
        for folder in held
    ]
    total = sum(folder['source_bytes'] or 0 for folder in held if folder['state'] == 'archived')
    archived = sum(1 for folder in held if folder['state'] == 'archived')
    return (
        table(('FOLDER', 'STATE', 'FILES', 'SIZE', 'ARCHIVED', 'VERIFIED', 'COPY', 'PART', 'ON TAPE AS'), rows)
        + f'\n\n{barcode}: {archived} archived folders, {human_bytes(total)}'
    )


def folder_contents(folder: Dict[str, Any], entries: List[Dict[str, Any]], total: int) -> str:
    rows = [
        (
            entry['kind'],
            human_bytes(entry['size']) if entry['kind'] == 'file' else '-',
            dt.datetime.fromtimestamp(entry['mtime'], dt.timezone.utc).strftime('%Y-%m-%d %H:%M'),
            entry['path'] + ('/' if entry['kind'] == 'dir' else ''),
        )
        for entry in entries
    ]
    head = (
        f'{folder["path"]} on {folder["tape"]} ({folder["state"]}, archived {_date(folder["archived"])}): '
        f'{total} entries' + (f', the first {len(entries)} shown (--limit)' if len(entries) < total else '')
    )
    return head + '\n\n' + table(('KIND', 'SIZE', 'MODIFIED (UTC)', 'PATH'), rows)


def history_table(records: List[Dict[str, Any]]) -> str:
    rows = [
        (
            str(record['id']),
            _copy(record),
            record['state'],
            record['tape'] or '-',
            _date(record['created']),
            _date(record['archived']),
            _date(record['verified']),
            str(record['file_count'] if record['file_count'] is not None else '-'),
            human_bytes(record['source_bytes']),
        )
        for record in records
    ]
    return table(('RECORD', 'COPY', 'STATE', 'TAPE', 'PREPARED', 'ARCHIVED', 'VERIFIED', 'FILES', 'SIZE'), rows)


def _copy(record: Dict[str, Any]) -> str:
    """'1' for a first record; 'N of R' for a further copy of record R."""
    if not record.get('copy_of'):
        return '1'
    return f'{record["copy_number"]} of {record["copy_of"]}'
