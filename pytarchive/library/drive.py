"""One tape drive used through LTFS: check its serial, format, mount, read free space, unmount, check.

The commands are configured paths (tapeinfo, mkltfs, ltfs, ltfsck, umount), run with their real
syntax. Unmounting waits for the ltfs process to finish writing the index before it returns: only
then may the tape be moved (see processes.py).

LTFS is read by its message ids (LTFSnnnnnE), never by its exit status alone: ltfs exits 0 when FUSE
refuses the mount point after the volume was read (a mount point not empty, an unknown option), so
a mount succeeded only when the mount table shows it.
"""

import logging
import os
import re
import shlex
from typing import Sequence, Union

from .commands import CommandNotRun, Finished, run_command
from .errors import AlreadyFormatted, DriveError, IndexBehind, Unformatted
from .processes import ltfs_processes, normalized_path, wait_for_exit

__all__ = ['Drive']

log = logging.getLogger(__name__)

# Loading, formatting and mounting an LTO tape take minutes; writing a large index at unmount too.
DEFAULT_TIMEOUT = 1800.0
DEFAULT_UNMOUNT_TIMEOUT = 3600.0

FORMATTED = 'LTFS15024I'  # Medium formatted successfully.
ALREADY_FORMATTED = 'LTFS15047E'  # Medium is already formatted
NOT_PARTITIONED = 'LTFS17168E'  # Cannot read volume: medium is not partitioned (never formatted)
# The volume's data goes beyond its last index: 'Medium check failed: extra blocks detected. Run ltfsck.'
INDEX_BEHIND = 'LTFS11220E'
# Killed before the end of data was marked: 'EOD of DP(1) is missing', 'Use ltfsck with the --deep-recovery option'.
DEEP_RECOVERY = ('LTFS17146E', 'LTFS17148E')
# Printed by the `file` tape backend on every run, success included: says nothing.
NOISE = ('LTFS30061E',)
# ltfsck's exit status: 0 consistent, 1 errors corrected (also printed for a volume found
# consistent), 4 errors left uncorrected, 8 operational error, 16 usage error.
LTFSCK_FINE = (0, 1)
_SERIAL_LINE = re.compile(r"^\s*SerialNumber:\s*'(?P<serial>[^']*)'", re.MULTILINE)
_LTFS_MESSAGE = re.compile(r'\b(LTFS\d{5}[EWI])\b\s*(.*)')
_VOLUME_SERIAL = re.compile(r'[A-Z0-9]{6}')

Command = Union[str, Sequence[str]]


class Drive:
    def __init__(
        self,
        mkltfs: Command,
        ltfs: Command,
        tapeinfo: Command,
        umount: Command,
        device: str,
        serial: str,
        mountpoint: str,
        timeout: float = DEFAULT_TIMEOUT,
        unmount_timeout: float = DEFAULT_UNMOUNT_TIMEOUT,
        ltfsck: Command = 'ltfsck',
    ):
        self.mkltfs = _command(mkltfs)
        self.ltfs = _command(ltfs)
        self.ltfsck = _command(ltfsck)
        self.tapeinfo = _command(tapeinfo)
        self.umount = _command(umount)
        self.device = device
        self.serial = serial.strip()
        self.mountpoint = mountpoint
        self.timeout = timeout
        self.unmount_timeout = unmount_timeout

    def check_serial(self) -> str:
        """Confirm with `tapeinfo -f DEVICE` that the device is the configured drive; return its serial."""
        finished = self._run([*self.tapeinfo, '-f', self.device])
        match = _SERIAL_LINE.search(finished.stdout)
        if match is None:
            raise DriveError(f'{finished.shown} printed no SerialNumber line; is {self.device} a tape drive?')
        found = match['serial'].strip()
        if found != self.serial:
            raise DriveError(
                f'{self.device} is drive {found}, not the configured drive {self.serial} '
                f'([Device] drive_serial); refusing to use it: check drive_device and drive_index'
            )
        return found

    def format(self, volume_serial: str, name: str, force: bool = False) -> None:
        """Write an empty LTFS volume with `mkltfs`. Raises AlreadyFormatted unless force (which erases it)."""
        if not _VOLUME_SERIAL.fullmatch(volume_serial):
            raise DriveError(
                f'volume serial {volume_serial!r} must be 6 characters A-Z or 0-9 '
                f'(usually the first six of the barcode)'
            )
        if self.is_mounted():
            raise DriveError(f'refusing to format {self.device}: a volume is mounted on {self.mountpoint}')
        argv = [*self.mkltfs, '-d', self.device, '-s', volume_serial, '-n', name] + (['-f'] if force else [])
        finished = self._run(argv, check=False)
        output = finished.stdout + finished.stderr
        if ALREADY_FORMATTED in output:
            raise AlreadyFormatted(
                f'{finished.shown}: the tape is already formatted ({ALREADY_FORMATTED}); '
                f'formatting it again with force erases everything on it'
            )
        if finished.returncode != 0 or FORMATTED not in output:
            raise DriveError(f'{finished.shown}: {_ltfs_messages(finished)}')
        log.info(
            'formatted %s as %s (%s): %s',
            self.device,
            volume_serial,
            name,
            _ltfs_messages(finished, levels='', wanted=_MKLTFS_SAYS),
        )

    def mount(self, read_only: bool = False) -> None:
        """Mount the tape's LTFS volume on the mount point and confirm it in the mount table.

        read_only: for restore and explore, so nothing can change an archived tape by accident.
        """
        if self.is_mounted():
            raise DriveError(f'{self.mountpoint} is already mounted; unmount it first')
        try:
            os.makedirs(self.mountpoint, mode=0o700, exist_ok=True)
        except OSError as error:
            raise DriveError(f'cannot create mount point {self.mountpoint}: {error.strerror}') from None
        # An absolute path: the ltfs daemon changes to / and unmount() finds it by this argument.
        options = f'devname={self.device},sync_type=time@5' + (',ro' if read_only else '')
        finished = self._run([*self.ltfs, '-o', options, normalized_path(self.mountpoint)], check=False)
        if self.is_mounted():
            log.info('mounted %s on %s%s', self.device, self.mountpoint, ' read-only' if read_only else '')
            return
        ids = ltfs_ids(finished)
        if NOT_PARTITIONED in ids:
            raise Unformatted(f'{finished.shown}: the tape is not formatted: {_ltfs_messages(finished)}')
        if any(code in ids for code in DEEP_RECOVERY):
            raise IndexBehind(f'{finished.shown}: {_ltfs_messages(finished)}', deep=True)
        if INDEX_BEHIND in ids:
            raise IndexBehind(f'{finished.shown}: {_ltfs_messages(finished)}')
        if finished.returncode == 0:
            raise DriveError(
                f'{finished.shown} exited 0 but {self.mountpoint} is not mounted: {_ltfs_messages(finished)}'
            )
        raise DriveError(f'{finished.shown}: {_ltfs_messages(finished)}')

    def check_volume(self, deep: bool = False) -> str:
        """Run ltfsck on the tape in the drive (not mounted): it rolls the volume back to its last
        complete index, dropping whatever was written after it. Returns what ltfsck said that matters."""
        if self.is_mounted():
            raise DriveError(f'refusing to check {self.device}: a volume is mounted on {self.mountpoint}')
        finished = self._run([*self.ltfsck, *(['--deep-recovery'] if deep else []), self.device], check=False)
        said = _ltfs_messages(finished, levels='EW', wanted=_LTFSCK_SAYS)
        if finished.returncode not in LTFSCK_FINE:
            raise DriveError(f'{finished.shown} exited {finished.returncode}: {said}; the volume is not recovered')
        log.warning('ltfsck on %s: %s', self.device, said)
        return said

    def space(self) -> tuple:
        """(total_bytes, free_bytes) of the mounted volume."""
        if not self.is_mounted():
            raise DriveError(f'no volume mounted on {self.mountpoint}: cannot read its capacity')
        try:
            stat = os.statvfs(self.mountpoint)
        except OSError as error:
            raise DriveError(f'cannot read the capacity of {self.mountpoint}: {error.strerror}') from None
        return stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize

    def unmount(self) -> None:
        """Unmount, then wait for the ltfs process to exit (index written). Does nothing if not mounted.

        Also finishes an earlier unmount whose ltfs process was still writing when that one gave up.
        """
        serving = ltfs_processes(self.mountpoint)
        if self.is_mounted():
            self._run([*self.umount, normalized_path(self.mountpoint)])
        elif not serving:
            return
        if not serving:
            log.warning('no ltfs process found for %s; nothing to wait for after umount', self.mountpoint)
            return
        log.info('waiting for ltfs (pid %s) to write the index of %s', ', '.join(map(str, serving)), self.mountpoint)
        still_running = wait_for_exit(serving, self.mountpoint, self.unmount_timeout)
        if still_running:
            raise DriveError(
                f'ltfs (pid {", ".join(map(str, still_running))}) for {self.mountpoint} is still running '
                f'{self.unmount_timeout:g} s after umount (writing the index?); do not move the tape: '
                f'wait, then unmount again'
            )
        log.info('unmounted %s', self.mountpoint)

    def is_mounted(self) -> bool:
        """Whether the mount point is in the kernel's mount table (read without touching the mount)."""
        target = normalized_path(self.mountpoint)
        try:
            with open('/proc/self/mounts', encoding='utf-8', errors='surrogateescape') as mounts:
                return any(
                    _unescape(fields[1]) == target for fields in (line.split() for line in mounts) if len(fields) > 1
                )
        except OSError as error:
            raise DriveError(f'cannot read the mount table /proc/self/mounts: {error.strerror}') from None

    def _run(self, argv: list, check: bool = True) -> Finished:
        try:
            finished = run_command(argv, self.timeout)
        except CommandNotRun as error:
            raise DriveError(f'{shlex.join(argv)}: {error}') from None
        if check and finished.returncode != 0:
            raise DriveError(f'{finished.shown}: {_ltfs_messages(finished)}')
        return finished


def _command(command: Command) -> list:
    return [command] if isinstance(command, str) else list(command)


# What mkltfs prints that says what the new volume is: block size, partitions, UUID, capacity.
_MKLTFS_SAYS = ('LTFS15004I', 'LTFS15010I', 'LTFS15011I', 'LTFS15013I', 'LTFS15019I', 'LTFS15024I')
# What ltfsck prints that says what it did: where it put the latest index (the data after it is
# dropped), that it wrote indexes to restore consistency, and the verdict.
_LTFSCK_SAYS = ('LTFS11227I', 'LTFS11230I', 'LTFS16021I', 'LTFS16022I')


def ltfs_ids(finished: Finished) -> list:
    """The LTFS message ids a command printed, in order."""
    return [match[1] for match in _LTFS_MESSAGE.finditer(finished.stderr + '\n' + finished.stdout)]


def _ltfs_messages(finished: Finished, levels: str = 'E', wanted: tuple = ()) -> str:
    """Every distinct LTFS message of these levels (or with these ids) a command printed, in order, the
    backend's noise left out: for a failure, the actionable line is often not the first (LTFS11220E
    'Run ltfsck' comes after others). Without any, its last line of output."""
    output = finished.stderr + '\n' + finished.stdout
    messages = [
        f'{match[1]} {match[2].strip()}'
        for match in _LTFS_MESSAGE.finditer(output)
        if match[1] not in NOISE and (match[1][-1] in levels or match[1] in wanted)
    ]
    if messages:
        return '; '.join(dict.fromkeys(messages))
    lines = [line.strip() for line in output.split('\n') if line.strip()]
    return lines[-1] if lines else f'exit status {finished.returncode}'


def _unescape(field: str) -> str:
    """/proc/self/mounts writes space, tab, newline and backslash in paths as octal escapes."""
    return re.sub(r'\\([0-7]{3})', lambda match: chr(int(match.group(1), 8)), field)
