"""`pytarchive format BARCODE`: load the tape, write an empty LTFS volume (mkltfs), unload it.

A tape that already holds an LTFS volume is left as it is (nothing is ever erased): that is also
how a format cut short after mkltfs finished ends when it runs again.
"""

from pytarchive.library.errors import AlreadyFormatted
from pytarchive.state import tapes
from pytarchive.taskqueue import TaskContext


def run(ctx: TaskContext, barcode: str) -> str:
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
