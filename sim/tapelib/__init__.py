"""A virtual tape library for the real tape software: only the robot is emulated.

What runs is real: Debian's mtx and tapeinfo (mtx 1.3.12), and the reference LTFS (mkltfs, ltfs,
ltfsck, built by `make ltfs` into build/ltfs) with its `file` tape backend, which keeps each
cartridge in a folder, one file per tape record. This kernel has no SCSI layer, so an LD_PRELOAD
shim (scsi/shim.c, built by make into build/tapelib) hands the SCSI commands that mtx and tapeinfo
send to the configured device paths to scsi/model.py, which answers from the library's state
(model.py: slots, drives, tapes, pending faults) kept in state.json under a lock (store.py). A
MOVE MEDIUM into a drive writes the backend's drive file naming the cartridge; out of it, removes
the file. While a process (ltfs until its index is written, mkltfs, ltfsck) holds a drive file
open, moving that tape fails with sense 05/53/03 (medium removal prevented), as a real library
answers while the drive prevents removal. Nothing here needs root but mounting (FUSE).

Admin CLI (python -m sim.tapelib ...)
    init DIR --slots N [--drives 1] --tapes TPN001L9,TPN002L9,-,CLN001L1 --capacity 3G
         [--import-export K]
        Creates the library in DIR (missing or empty) and prints the pytarchive.conf lines: the
        real mtx and tapeinfo run through `env LD_PRELOAD=... /usr/sbin/mtx`, and the real mkltfs,
        ltfs, ltfsck. Tapes fill slots 1, 2, ... in order; "-" is a cartridge without a barcode
        label; CLN* barcodes are cleaning cartridges. The last K slots are import/export slots
        (they count among the N). --capacity per cartridge, at least 160M (K/M/G/T are powers of
        1024; LTFS gives about 92.5 % of it to data).
    fault DIR mtx-error --sense-key 'Illegal Request' --asc 53 --ascq 03 [--count N]
        The next N moves fail with that sense data.
    fault DIR tape-full BARCODE --at SIZE
        The cartridge holds SIZE (at least 160M) from its next load: a small tape that fills up.
    fault DIR flip-byte BARCODE PATH
        Changes one byte in the middle of PATH's data on the cartridge (the record its newest
        index names), as media corruption would: LTFS reads the bad byte back.
    fault DIR damage BARCODE
        Takes the cartridge's LTFS labels away: ltfs refuses to mount it (LTFS11009E).
    fault DIR move BARCODE --to-slot N
        An operator moved the tape to slot N by hand (with the door open, not through the robot).
    fault DIR clear        removes pending mtx errors and gives damaged cartridges their labels back.
    show DIR               the library state in plain words.
    cleanup DIR            unmounts every mount of the library's drives (each ltfs then writes its index
                           and ends), waits for the processes holding a drive, sends SIGTERM to an
                           ltfs whose mount is busy, and SIGKILL to what is left after 30 s.

Inside DIR
    dev/sch0                        the changer's device (mtx -f), answered by the shim
    drives/Drive_<SERIAL>.ULTRIUM-HH9
                                    a drive: LTFS's devname, and the path tapeinfo opens; the file
                                    exists while the drive holds a cartridge and names its folder
    tapes/<BARCODE>/                a cartridge: its records and filedebug_tc_conf.xml
    state.json (+ state.lock)       the robot's state
    mnt/ (mnt1/, mnt2/...)          a mount point for pytarchive per drive (init --drives N)
    damaged/<BARCODE>/              the labels `fault damage` took away

The real programs' own behaviour (no program prefix on mtx's error lines, a drive's source slot
rewritten to the first empty slot, LTFS's refusals, crash and full-tape behaviour) is theirs: the
README's "virtual tape library" section lists what matters to pytarchive.
"""
