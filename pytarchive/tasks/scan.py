"""`pytarchive scan`: read `mtx status` and make the tapes table match it."""

from pytarchive.state import tapes
from pytarchive.taskqueue import TaskContext


def run(ctx: TaskContext) -> str:
    counts = tapes.record_scan(ctx.resources.db, ctx.resources.changer.status())
    result = f'{counts["tapes"]} tapes with a barcode in {counts["slots"]} slots'
    if counts['unlabelled']:
        result += f'; {counts["unlabelled"]} without a barcode, ignored'
    return result
