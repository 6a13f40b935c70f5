"""Tables for people: the queue and the library summary as the client prints them."""

import datetime as dt
from typing import Any, Dict, List, Optional, Sequence

from pytarchive.queue import Task
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


def _arguments(task: Task) -> str:
    return ' '.join(str(value) for value in task.args.values()) or '-'


def _progress(task: Task) -> str:
    parts = []
    if task.bytes_total or task.bytes_done:
        total = f' of {human_bytes(task.bytes_total)}' if task.bytes_total is not None else ''
        parts.append(f'{human_bytes(task.bytes_done)}{total}')
    if task.files_total or task.files_done:
        total = f' of {task.files_total}' if task.files_total is not None else ''
        parts.append(f'{task.files_done}{total} files')
    return ', '.join(parts) or '-'


def queue_table(tasks: List[Task], now: Optional[dt.datetime] = None) -> str:
    if not tasks:
        return 'the queue is empty'
    rows = [(str(task.id), task.kind, _arguments(task), task.state, _progress(task), age(task.created, now))
            for task in tasks]
    notes = {}
    for index, task in enumerate(tasks):
        if task.error:
            notes[index] = f'error: {task.error}'
        elif task.result:
            notes[index] = task.result
    return table(('ID', 'KIND', 'ARGUMENTS', 'STATE', 'PROGRESS', 'AGE'), rows, notes)


def summary_text(tapes: List[Dict[str, Any]], queue_counts: Dict[str, int], folder_counts: Dict[str, int]) -> str:
    if tapes:
        rows = []
        for tape in tapes:
            free = tape['capacity'] - tape['used'] if tape['capacity'] is not None and tape['used'] is not None else None
            rows.append((tape['barcode'], str(tape['slot']) if tape['slot'] is not None else 'not in library',
                         tape['state'], human_bytes(tape['capacity']), human_bytes(tape['used']), human_bytes(free),
                         tape['checked'] or '-'))
        tape_part = table(('BARCODE', 'SLOT', 'STATE', 'CAPACITY', 'USED', 'FREE', 'CHECKED'), rows)
    else:
        tape_part = 'no tapes known yet: run `pytarchive scan`'
    queue_part = ', '.join(f'{count} {state}' for state, count in queue_counts.items()) or 'empty'
    folder_part = ', '.join(f'{count} {state}' for state, count in folder_counts.items()) or 'none yet'
    return f'{tape_part}\n\nqueue: {queue_part}\nfolders: {folder_part}'
