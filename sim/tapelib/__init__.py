"""A virtual tape library whose stand-in mtx, tapeinfo, mkltfs and ltfs act like the real tools.

Production code runs them through configured command paths, unchanged: nothing in it needs to
know it talks to a simulator. Needs root (CAP_SYS_ADMIN) and loop devices: every tape is a sparse
ext4 image that ltfs loop-mounts.

Admin CLI (python -m sim.tapelib ...)
    init DIR --slots N [--drives 1] --tapes TPN001L9,TPN002L9,-,CLN001L1 --capacity 16G
         [--import-export K] [--index-write-seconds 0.5]
        Creates the library in DIR (missing or empty) and prints the pytarchive.conf lines
        ([General] tape_max_size, [Device] library, drive_serial, drive_index, drive_device,
        mountpoint, mtx, tapeinfo, mkltfs, ltfs, umount). Tapes fill slots 1, 2, ... in order;
        "-" is a cartridge without a barcode label; CLN* barcodes are cleaning cartridges. The
        last K slots are import/export slots (they count among the N). Sizes take K/M/G/T
        (powers of 1024).
    fault DIR mtx-error --sense-key 'Illegal Request' --asc 53 --ascq 03 [--count N]
        The next N moves (load, unload, transfer) fail with that sense data.
    fault DIR tape-full BARCODE --at BYTES
        The tape runs out of space (ENOSPC, statvfs free 0) when its data reaches BYTES; applied
        at once if it is mounted, else at its next mount; stays until `fault DIR clear`.
    fault DIR flip-byte BARCODE PATH [--on-next-mount]
        Inverts the byte in the middle of PATH (as seen from the tape root), keeping size and
        times, whether the tape is mounted or not; with --on-next-mount, at the tape's next mount
        (once PATH exists), so corruption shows only when data written is read back after a remount.
    fault DIR mount-fails [--count N]
        The next N ltfs mounts fail (LTFS11009E, LTFS14013E, exit 1).
    fault DIR clear        removes every pending fault and tape-full limit.
    show DIR               the library state in plain words.
    cleanup DIR            SIGTERM to every ltfs of the library, waits for it, undoes mounts left.

Inside DIR
    bin/mtx, bin/tapeinfo, bin/mkltfs, bin/ltfs   the stand-ins (shell wrappers; the process
        runs as "ltfs" etc.: they exec the interpreter through libexec/<name> symlinks)
    dev/sch0 (the changer), dev/nst0, dev/nst1, ... (drives; serials 10WT000000, 10WT000010, ...)
    state.json (+ state.lock)   all state, written atomically under an flock by every process
    tapes/<BARCODE>.img         tape images, created by the first format; sparse
    mnt/                        a mount point for pytarchive;  log/ltfs.log: the ltfs daemons
    run/                        where tape images are loop-mounted while ltfs serves them

The stand-ins
    mtx [-f DIR/dev/sch0] status|load SLOT [DRIVE]|unload [SLOT] [DRIVE]|transfer SRC DST|
        inquiry|inventory|nobarcode ...   (several commands in one run, left to right)
        Output byte for byte as mtx 1.3.12: "  Storage Changer DEV:1 Drives, 6 Slots ( 1 Import/Export )",
        "Data Transfer Element 0:Full (Storage Element 1 Loaded):VolumeTag = TPN001L9<pad>",
        "      Storage Element 2:Full :VolumeTag=TPN002L9<pad>" (volume tags space-padded to 36),
        "      Storage Element 3:Full " for a tape without barcode, "... IMPORT/EXPORT:Empty".
        Errors: "ARGV0: message" on stderr, exit 1, where ARGV0 is the name mtx was called by (the
        real mtx does the same: call it by full path and the prefix is the path): "Drive 0 Full
        (Storage Element 1 loaded)", "Storage Element 2 is Already Full", "Data Transfer Element 0
        is Empty", "No Source for tape in drive 0!", "Source Element Address 4098 is Empty",
        "Destination Element Address 4099 is Already Full"; a refused move prints the
        "mtx: Request Sense: ..." block, then "ARGV0: MOVE MEDIUM from Element Address 256 to
        4096 Failed". Element addresses: drives 256+, slots 4096+, import/export 16+.
        While an ltfs process serves the tape in a drive (until it has written its index after
        the unmount) moving that tape fails with sense Illegal Request, 53/03 (medium removal
        prevented), as a real library answers.
        -f must name DIR/dev/sch0 (or a link to it); without -f: $CHANGER, $TAPE, /dev/changer.
    tapeinfo -f DIR/dev/nstN
        Inquiry and status lines of an IBM ULTRIUM-HH9 drive including SerialNumber: '10WT000000';
        "Ready: no" and "Medium Type: Not Loaded" without a tape.
    mkltfs -d DEVICE_OR_SERIAL [-s SERIAL6] [-n NAME] [-f] [-w] [-c] [-q]
        Messages on stderr as ltfs 2.4's mkltfs; exit 0 with "LTFS15024I Medium formatted
        successfully."; 16 with "LTFS15047E Medium is already formatted (0)." unless -f; 8 with
        "LTFS12016E No medium present." or for a busy drive or cleaning cartridge. Formatting
        makes a new, empty image: whatever was on the tape is gone. -w unformats. Without -s the
        volume serial is the barcode's first six characters.
    ltfs -o devname=DEVICE_OR_SERIAL[,sync_type=...,eject,ro,...] MOUNTPOINT
        Messages on stderr ("<tid> LTFS11031I Volume mounted successfully."...), exit 0 once the
        tape is mounted: MOUNTPOINT shows the tape's files, in /proc/mounts as an ext4 bind mount
        of a loop device (the real one is "ltfs:DEV ... fuse"), statvfs near the capacity,
        ENOSPC when full, root xattrs user.ltfs.volumeSerial, volumeName, volumeUUID,
        mediaDataPartitionTotalCapacity and mediaDataPartitionAvailableSpace (MiB, refreshed
        every half second). A daemon (comm "ltfs", MOUNTPOINT among its arguments, new session,
        output to DIR/log/ltfs.log) stays until MOUNTPOINT is unmounted, then sleeps
        index_write_seconds ("writing the index"), releases the image, records the new index
        generation and exits. Wait for it to exit before moving the tape. It ends the same way
        on SIGTERM/SIGINT/SIGHUP. Failures (exit 1): no tape (LTFS12016E, LTFS14075E),
        unformatted tape or mount-fails fault (LTFS11009E, LTFS14013E), cleaning cartridge
        (LTFS11298E), unknown or busy drive (LTFS12012E, LTFS10004E), FUSE's mount point
        complaints (missing, not empty, or "Transport endpoint is not connected" for the mount
        an ltfs left when it was killed: umount it, mount the tape again and unmount it).
        -f keeps it in the foreground.
    ltfs -o device_list
        "Tape Device list:." and one "Device Name = ..., Serial Number = ..." line per drive, on
        stderr, exit status 1, as the real ltfs.

An ltfs killed with SIGKILL leaves its mounts: the tape stays locked in the drive (mtx moves
fail with 53/03) until MOUNTPOINT is unmounted and the tape is mounted and unmounted again, or
`cleanup DIR` runs.
"""
