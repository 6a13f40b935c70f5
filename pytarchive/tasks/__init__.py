"""The task kinds: scan, format, check and inventory here; prepare, archive, restore and explore in
their own modules (imported at the end so that importing this module registers every kind).
Each is safe to run again after a crash.

Every handler starts from the library's state as mtx reports it now (never from what the database
believes), moves tapes only through DriveResources, and leaves the drive empty and unmounted
however it ends. Checkpoints sit between steps; a step itself (mkltfs, a mount) runs to its end.
"""

import json as _json

from common.errors import ToolError
from pytarchive import inventory as survey, mail, tapes
from pytarchive.library.errors import AlreadyFormatted
from pytarchive.queue import TaskContext, task
from pytarchive.units import human_bytes


@task('scan')
def scan(ctx: TaskContext) -> str:
    """Read `mtx status` and make the tapes table match it."""
    counts = tapes.record_scan(ctx.resources.db, ctx.resources.changer.status())
    result = f'{counts["tapes"]} tapes with a barcode in {counts["slots"]} slots'
    if counts['unlabelled']:
        result += f'; {counts["unlabelled"]} without a barcode, ignored'
    return result


@task('format')
def format_tape(ctx: TaskContext, barcode: str) -> str:
    """Load the tape, write an empty LTFS volume (mkltfs), unload it.

    A tape that already holds an LTFS volume is left as it is (nothing is ever erased): that is
    also how a format cut short after mkltfs finished ends when it runs again.
    """
    resources = ctx.resources
    with resources.tape_loaded(barcode) as slot:
        ctx.checkpoint()
        try:
            resources.drive.format(volume_serial=barcode[:6].upper(), name=barcode)
            result = f'{barcode} formatted'
        except AlreadyFormatted:
            result = f'{barcode} already holds an LTFS volume; left as it is (nothing erased)'
        tapes.record_formatted(resources.db, barcode, slot)
    return result


@task('check')
def check_tape(ctx: TaskContext, barcode: str) -> str:
    """Load the tape, mount it, record its capacity and use, unmount and unload it."""
    resources = ctx.resources
    with resources.tape_loaded(barcode) as slot:
        ctx.checkpoint()
        resources.drive.mount()
        ctx.checkpoint()
        total, free = resources.drive.space()
        used = total - free
        tapes.record_space(resources.db, barcode, slot, capacity=total, used=used)
    return f'{barcode}: {human_bytes(used)} used of {human_bytes(total)} ({human_bytes(free)} free)'


@task('inventory')
def inventory(ctx: TaskContext, json: bool = False) -> str:
    """Size, file count and age of every subfolder of [General] source_folders; mailed when [Email] is set."""
    config = ctx.resources.config
    ctx.progress(step='surveying')
    report = survey.survey(config.general.source_folders, config.general.exclude_folders,
                           on_progress=lambda _folder: ctx.checkpoint())  # a stopping service waits one folder
    text = survey.render_text(report)
    if config.email.configured:
        try:
            mail.send(config.email, 'pytarchive inventory', text, survey.render_html(report))
            sent = f'emailed to {", ".join(config.email.recipients)}'
        except ToolError as exc:  # the report is still worth printing
            ctx.log.error('inventory not emailed: %s', exc.message)
            sent = f'NOT emailed: {exc.message}'
    else:
        sent = 'not emailed: set [Email] smtp_host, sender and recipients to receive it'
    if json:
        return _json.dumps({**survey.as_json(report), 'email': sent}, indent=2)
    return f'{text}\n\n{sent}'


# The other task kinds register themselves on import.
from pytarchive import archive, explore, prepare, restore  # noqa: E402,F401
