"""`pytarchive check BARCODE`: load the tape, mount it, record its capacity and use, unmount and unload it."""

from pytarchive.state import tapes
from pytarchive.taskqueue import TaskContext
from pytarchive.units import human_bytes


def run(ctx: TaskContext, barcode: str) -> str:
    resources = ctx.resources
    with resources.tape_loaded(barcode) as slot:
        ctx.checkpoint()
        resources.mount()
        ctx.checkpoint()
        total, free = resources.drive.space()
        used = total - free
        tapes.record_space(resources.db, barcode, slot, capacity=total, used=used)
    result = f'{barcode}: {human_bytes(used)} used of {human_bytes(total)} ({human_bytes(free)} free)'
    return f'{result}; {resources.recovery}' if resources.recovery else result
