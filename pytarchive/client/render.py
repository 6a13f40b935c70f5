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
    parts = [shlex.quote(str(args[key])) for key in ('path', 'barcode', 'description') if args.get(key)]
    parts += [f'--{key} {shlex.quote(str(args[key]))}' for key in ('to', 'only') if args.get(key)]
    parts += [f'--{key}' for key in ('force', 'json') if args.get(key) is True]
    return ' '.join(parts)


def _arguments(task: Task) -> str:
    return arguments_text(task.args) or '-'


def progress_text(task: Task) -> str:
    parts = []
    if task.bytes_total or task.bytes_done:
        total = f' of {human_bytes(task.bytes_total)}' if task.bytes_total is not None else ''
        parts.append(f'{human_bytes(task.bytes_done)}{total}')
    if task.files_total or task.files_done:
        total = f' of {task.files_total}' if task.files_total is not None else ''
        parts.append(f'{task.files_done}{total} files')
    shown = ', '.join(parts) or '-'
    return f'{task.step}: {shown}' if task.step and task.state == RUNNING else shown


def queue_table(tasks: List[Task], now: Optional[dt.datetime] = None) -> str:
    if not tasks:
        return 'the queue is empty'
    rows = [
        (str(task.id), task.kind, _arguments(task), task.state, progress_text(task), age(task.created, now))
        for task in tasks
    ]
    notes = {}
    for index, task in enumerate(tasks):
        if task.error:
            notes[index] = f'error: {task.error}'
        elif task.result:
            notes[index] = task.result
    return table(('ID', 'KIND', 'ARGUMENTS', 'STATE', 'PROGRESS', 'AGE'), rows, notes)


def _slot(tape: Dict[str, Any], drive: Optional[Dict[str, Any]]) -> str:
    if drive and drive.get('tape') == tape['barcode']:
        return f'drive {drive["index"]}'
    return str(tape['slot']) if tape['slot'] is not None else 'not in library'


def summary_text(
    tapes: List[Dict[str, Any]],
    drive: Optional[Dict[str, Any]],
    queue_counts: Dict[str, int],
    folder_counts: Dict[str, int],
) -> str:
    if tapes:
        rows = [
            (
                tape['barcode'],
                _slot(tape, drive),
                tape['state'],
                human_bytes(tape['capacity']),
                human_bytes(tape['used']),
                human_bytes(tape['free']),
                str(tape['folders']),
                tape['checked'] or '-',
            )
            for tape in tapes
        ]
        tape_part = table(('BARCODE', 'SLOT', 'STATE', 'CAPACITY', 'USED', 'FREE', 'FOLDERS', 'CHECKED'), rows)
    else:
        tape_part = 'no tapes known yet: run `pytarchive scan`'
    if drive is None:
        drive_part = 'unknown'
    elif drive['tape']:
        drive_part = f'{drive["index"]} (serial {drive["serial"]}): {drive["tape"]}, ' + (
            f'mounted {drive["mounted"]}' if drive['mounted'] else 'not mounted'
        )
    else:
        drive_part = f'{drive["index"]} (serial {drive["serial"]}): empty'
    queue_part = ', '.join(f'{count} {state}' for state, count in queue_counts.items()) or 'empty'
    folder_part = ', '.join(f'{count} {state}' for state, count in folder_counts.items()) or 'none yet'
    return f'{tape_part}\n\ndrive: {drive_part}\nqueue: {queue_part}\nfolders: {folder_part}'


def deleteable_table(rows: List[Dict[str, Any]]) -> str:
    if not rows:
        return 'nothing is archived and verified yet'
    lines = [
        (
            row['path'],
            row['tape'],
            human_bytes(row['source_bytes']),
            str(row['file_count']),
            (row['verified'] or '')[:10],
            'packed' if row['packed'] else '',
        )
        for row in rows
    ]
    total = sum(row['source_bytes'] or 0 for row in rows)
    return (
        table(('FOLDER', 'TAPE', 'SIZE', 'FILES', 'VERIFIED', ''), lines)
        + f'\n\n{len(rows)} folders, {human_bytes(total)}: archived and verified, safe to delete by hand '
        f'(pytarchive never deletes originals)'
    )
