"""`pytarchive inventory`: every subfolder of the source folders with its size, file count and age,
so an admin sees what is big and has not changed for years: the candidates to archive.

Symlinks are never followed (a link is an entry of its own size): a link to a huge file or a loop
can neither inflate a folder nor hang the walk. Names in exclude_folders are skipped at every depth,
because folders such as `.local, .cache, .config` live inside the homes that are the subfolders of
`/path/to/user/homes`. What cannot be read (permissions, entries vanishing during the walk) is
counted in `errors`, never raised: one unreadable home must not hide the rest of the report.
Sizes are apparent sizes (st_size) of everything but directories, which `files` does not count
either. Files lying directly in a source folder belong to no subfolder and are left out.
"""

import datetime as dt
import html
import json as _json
import logging
import os
import stat
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from common.errors import ToolError
from pytarchive import mail
from pytarchive.client.render import table
from pytarchive.taskqueue import TaskContext
from pytarchive.units import human_bytes

log = logging.getLogger(__name__)

HEADERS = ('FOLDER', 'SIZE', 'FILES', 'NEWEST', 'AGE')


@dataclass
class FolderUsage:
    path: str
    bytes: int = 0
    files: int = 0
    newest: Optional[float] = None  # newest mtime of anything inside; None when nothing is
    errors: int = 0  # entries that could not be read


@dataclass
class Report:
    folders: List[FolderUsage]  # biggest first
    missing: List[Tuple[str, str]]  # (source folder, why it was not surveyed)
    generated: float  # epoch seconds; ages are counted to this moment

    @property
    def totals(self) -> FolderUsage:
        newest = max((folder.newest for folder in self.folders if folder.newest is not None), default=None)
        return FolderUsage(
            'total',
            sum(folder.bytes for folder in self.folders),
            sum(folder.files for folder in self.folders),
            newest,
            sum(folder.errors for folder in self.folders),
        )


def survey(
    source_folders: Iterable[str],
    exclude: Iterable[str] = (),
    on_progress: Optional[Callable[[FolderUsage], None]] = None,
    now: Optional[float] = None,
) -> Report:
    """Measure each subfolder; on_progress gets each FolderUsage as soon as it is measured."""
    excluded = frozenset(exclude)
    folders: List[FolderUsage] = []
    missing: List[Tuple[str, str]] = []
    for source in source_folders:
        try:
            with os.scandir(source) as listing:
                children = sorted(
                    entry.path
                    for entry in listing
                    if entry.name not in excluded and entry.is_dir(follow_symlinks=False)
                )
        except OSError as exc:
            missing.append((source, _reason(exc)))
            continue
        for path in children:
            usage = _measure(path, excluded)
            folders.append(usage)
            if on_progress is not None:
                on_progress(usage)
    folders.sort(key=lambda folder: (-folder.bytes, folder.path))
    return Report(folders, missing, time.time() if now is None else now)


def _reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return 'does not exist'
    if isinstance(exc, NotADirectoryError):
        return 'is not a directory'
    return f'cannot read it: {exc.strerror or exc}'


def _measure(path: str, excluded: frozenset) -> FolderUsage:
    # A stack rather than recursion: a deep tree must not hit the recursion limit.
    usage = FolderUsage(path)
    pending = [path]
    while pending:
        try:
            with os.scandir(pending.pop()) as listing:
                entries = list(listing)
        except OSError:  # unreadable, or gone since its parent was listed
            usage.errors += 1
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                usage.errors += 1
                continue
            if stat.S_ISDIR(info.st_mode):
                if entry.name in excluded:
                    continue
                pending.append(entry.path)
            else:
                usage.bytes += info.st_size
                usage.files += 1
            if usage.newest is None or info.st_mtime > usage.newest:
                usage.newest = info.st_mtime
    return usage


def age_words(newest: Optional[float], now: float) -> str:
    """'3 years', '5 months', '12 days' (a year is 365 days, a month 30)."""
    if newest is None:
        return '-'
    days = max(0, int((now - newest) // 86400))
    for size, unit in ((365, 'year'), (30, 'month'), (1, 'day')):
        if days >= size:
            return _count(days // size, unit)
    return 'under a day'


def _shown(path: str) -> str:
    """A name that is not UTF-8 (kept by Python as surrogates) shown with U+FFFD, so it can be printed and mailed."""
    return os.fsencode(path).decode('utf-8', 'replace')


def _date(when: Optional[float]) -> str:
    return '-' if when is None else time.strftime('%Y-%m-%d', time.localtime(when))


def _iso(when: Optional[float]) -> Optional[str]:
    return None if when is None else dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(timespec='seconds')


def _rows(report: Report) -> List[Tuple[str, ...]]:
    return [
        (
            _shown(folder.path),
            human_bytes(folder.bytes),
            f'{folder.files:,}',
            _date(folder.newest),
            age_words(folder.newest, report.generated),
        )
        for folder in report.folders
    ]


def _count(number: int, noun: str) -> str:
    return f'{number:,} {noun}' if number == 1 else f'{number:,} {noun}s'


def _summary(report: Report) -> List[str]:
    totals = report.totals
    unreadable = f', {totals.errors:,} entries could not be read' if totals.errors else ''
    lines = [
        f'total: {human_bytes(totals.bytes)} in {_count(totals.files, "file")}, '
        f'{_count(len(report.folders), "folder")}{unreadable}'
    ]
    lines += [f'missing source folder: {_shown(path)}: {reason}' for path, reason in report.missing]
    lines.append(f'generated {time.strftime("%Y-%m-%d %H:%M", time.localtime(report.generated))}')
    return lines


def render_text(report: Report) -> str:
    notes = {
        index: f'{folder.errors:,} entries could not be read'
        for index, folder in enumerate(report.folders)
        if folder.errors
    }
    body = table(HEADERS, _rows(report), notes) if report.folders else 'no folders found'
    return '\n'.join([body, '', *_summary(report)])


def render_html(report: Report) -> str:
    """A whole document (for the HTML part of the report mail); every name is escaped."""
    head = ''.join(f'<th>{name}</th>' for name in HEADERS)
    rows = []
    for folder, cells in zip(report.folders, _rows(report)):
        path, *numbers = (html.escape(cell) for cell in cells)
        warning = f' <em>({folder.errors:,} entries could not be read)</em>' if folder.errors else ''
        rows.append(
            f'<tr><td>{path}{warning}</td>' + ''.join(f'<td class="n">{cell}</td>' for cell in numbers) + '</tr>'
        )
    summary = ''.join(f'<p>{html.escape(line)}</p>\n' for line in _summary(report))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<title>pytarchive inventory</title>\n<style>table{border-collapse:collapse}'
        'th,td{padding:2px 8px;text-align:left}td.n{text-align:right}</style>\n</head>\n<body>\n'
        f'<table>\n<tr>{head}</tr>\n' + '\n'.join(rows) + '\n</table>\n' + summary + '</body>\n</html>\n'
    )


def as_json(report: Report) -> Dict[str, Any]:
    """For --json: bytes as integers, times as ISO 8601 in UTC, names as render_text shows them."""
    totals = report.totals
    return {
        'generated': _iso(report.generated),
        'folders': [
            {
                'path': _shown(folder.path),
                'bytes': folder.bytes,
                'files': folder.files,
                'newest': _iso(folder.newest),
                'age': age_words(folder.newest, report.generated),
                'errors': folder.errors,
            }
            for folder in report.folders
        ],
        'missing': [{'path': _shown(path), 'reason': reason} for path, reason in report.missing],
        'totals': {
            'folders': len(report.folders),
            'bytes': totals.bytes,
            'files': totals.files,
            'errors': totals.errors,
        },
    }


def run(ctx: TaskContext, json: bool = False) -> str:
    """The task: survey [General] source_folders; the report mailed when [Email] is set, and returned."""
    config = ctx.resources.config
    ctx.progress(step='surveying')
    report = survey(
        config.general.source_folders, config.general.exclude_folders, on_progress=lambda _folder: ctx.checkpoint()
    )  # a stopping service waits one folder
    text = render_text(report)
    if config.email.configured:
        try:
            mail.send(config.email, 'pytarchive inventory', text, render_html(report))
            sent = f'emailed to {", ".join(config.email.recipients)}'
        except ToolError as exc:  # the report is still worth printing
            log.error('inventory not emailed: %s', exc.message)
            sent = f'NOT emailed: {exc.message}'
    else:
        sent = 'not emailed: set [Email] smtp_host, sender and recipients to receive it'
    if json:
        return _json.dumps({**as_json(report), 'email': sent}, indent=2)
    return f'{text}\n\n{sent}'
