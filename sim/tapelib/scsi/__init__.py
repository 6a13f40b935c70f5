"""The SCSI side of the virtual library: a medium changer and tape drives answering CDBs (model.py),
reached by the real mtx and tapeinfo through an LD_PRELOAD shim (shim.c)."""
