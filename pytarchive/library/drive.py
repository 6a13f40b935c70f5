"""One tape drive used through LTFS: check its serial, format, mount, read free space, unmount.

The commands are configured paths (tapeinfo, mkltfs, ltfs, umount), run with their real syntax.
Unmounting waits for the ltfs process to finish writing the index before it returns: only then may
the tape be moved (see processes.py).
"""

import logging
import os
import re
import shlex
from typing import Sequence, Union

from .commands import CommandNotRun, Finished, run_command
from .errors import AlreadyFormatted, DriveError
from .processes import ltfs_processes, normalized_path, wait_for_exit

__all__ = ['Drive']

log = logging.getLogger(__name__)

# Loading, formatting and mounting an LTO tape take minutes; writing a large index at unmount too.
DEFAULT_TIMEOUT = 1800.0
DEFAULT_UNMOUNT_TIMEOUT = 3600.0

FORMATTED = 'LTFS15024I'  # Medium formatted successfully.
ALREADY_FORMATTED = 'LTFS15047E'  # Medium is already formatted
_SERIAL_LINE = re.compile(r"^\s*SerialNumber:\s*'(?P<serial>[^']*)'", re.MULTILINE)
_LTFS_ERROR = re.compile(r'LTFS\d{5}E\b.*')
_VOLUME_SERIAL = re.compile(r'[A-Z0-9]{6}')
_MAX_ERRORS_SHOWN = 3

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
    ):
        self.mkltfs = _command(mkltfs)
        self.ltfs = _command(ltfs)
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
            raise DriveError(f'{finished.shown}: {_ltfs_failure(finished)}')
        log.info('formatted %s as %s (%s)', self.device, volume_serial, name)

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
        if finished.returncode != 0:
            raise DriveError(f'{finished.shown}: {_ltfs_failure(finished)}')
        if not self.is_mounted():
            raise DriveError(f'{finished.shown} exited without error but {self.mountpoint} is not mounted')
        log.info('mounted %s on %s%s', self.device, self.mountpoint, ' read-only' if read_only else '')

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
            raise DriveError(f'{finished.shown}: {_ltfs_failure(finished)}')
        return finished


def _command(command: Command) -> list:
    return [command] if isinstance(command, str) else list(command)


def _ltfs_failure(finished: Finished) -> str:
    """The LTFS error messages (LTFSnnnnnE) a command printed, else its last line of output."""
    output = finished.stderr + '\n' + finished.stdout
    errors = [match.group(0).strip() for match in _LTFS_ERROR.finditer(output)]
    if errors:
        return '; '.join(dict.fromkeys(errors[:_MAX_ERRORS_SHOWN]))
    lines = [line.strip() for line in output.split('\n') if line.strip()]
    return lines[-1] if lines else f'exit status {finished.returncode}'


def _unescape(field: str) -> str:
    """/proc/self/mounts writes space, tab, newline and backslash in paths as octal escapes."""
    return re.sub(r'\\([0-7]{3})', lambda match: chr(int(match.group(1), 8)), field)
