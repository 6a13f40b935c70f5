"""pytarchive: archive folders to LTFS tapes in an mtx tape library.

The wings, each importing only the ones after it:
    client/     the command line, its tables and the wire protocol (imports no service code)
    service/    the root service: socket, commands, who may run what
    tasks/      one module per task kind, and REGISTRY, the list of them
    taskqueue/  the persistent queue: storage, registry, consumer
    state/      the SQLite database: folders, manifests, tapes
    library/    mtx, tapeinfo, mkltfs, ltfs: the changer and the drive
and leaf modules shared by them (config, checks, units, walk, packing, transfer, safefs, mail,
progress, resources).
"""
