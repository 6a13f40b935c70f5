"""The task kinds, one module each with its handler `run(ctx, **args)`, and REGISTRY: the one list
of them that the service runs and that its commands may queue.

Every handler starts from the library's state as mtx reports it now (never from what the database
believes), moves tapes only through DriveResources, and leaves the drive empty and unmounted
however it ends. Checkpoints sit between steps; a step itself (mkltfs, a mount) runs to its end.
Each is safe to run again after a crash. A new kind is a module here and one line in REGISTRY; a
kind that loads a tape its arguments do not name lists its `tapes_needed` function as a third item (the
queue's rule for several drives: taskqueue.registry's claims).
"""

from pytarchive.taskqueue import Registry
from pytarchive.tasks import (
    archive,
    check,
    copies,
    explore,
    format,
    inventory,
    prepare,
    restore,
    scan,
    tapeimport,
    verify,
)

REGISTRY = Registry(
    [
        ('scan', scan.run),
        ('format', format.run),
        ('check', check.run),
        ('prepare', prepare.run),
        ('archive', archive.run, archive.tapes_needed),
        ('copy', copies.run, copies.tapes_needed),
        ('restore', restore.run, restore.tapes_needed),
        ('explore', explore.run, explore.tapes_needed),
        ('inventory', inventory.run),
        ('verify', verify.run, verify.tapes_needed),
        ('import', tapeimport.run),
    ]
)
