"""Failures of the tape library and the drive, each shown to the user as one line.

The service turns any LibraryError into a failed task whose error is str(error), so every message
here must say what happened and what to do, on one line, without a traceback.
"""

import shlex
from typing import Optional, Sequence

# The operator's advice, given with every error mtx itself reports: a changer error is physical state
# (a tape half-moved, a slot the robot thinks is full), and a power cycle can lose data.
T10_ASC_LIST = 'https://www.t10.org/lists/asc-num.htm'
DO_NOT_POWER_CYCLE = 'do not power-cycle the library or the host, it can make it worse'


class LibraryError(Exception):
    """Base class: anything the library layer cannot do. str() is one line for the user."""


class MtxParseError(LibraryError):
    """`mtx status` printed something this parser does not understand."""


class MtxError(LibraryError):
    """An mtx command failed, was refused, or could not run.

    `command` is the argv that ran (None for a refusal before running anything), `message` mtx's own
    error line (or ours), `sense_key`/`asc`/`ascq` the Request Sense fields mtx printed (ASC and ASCQ as
    the two-digit hex strings mtx prints, e.g. '53' and '03'), `status_after` the library status read
    again after the failure (None when that read failed too or nothing had run).
    """

    def __init__(
        self,
        message: str,
        command: Optional[Sequence[str]] = None,
        sense_key: Optional[str] = None,
        asc: Optional[str] = None,
        ascq: Optional[str] = None,
        mtx_reported: bool = False,
    ):
        self.message = message
        self.command = list(command) if command is not None else None
        self.sense_key = sense_key
        self.asc = asc
        self.ascq = ascq
        # True when mtx ran and failed (exit status, sense data or timeout): only then the operator's
        # advice applies; a missing executable or a refused request needs no warning about power.
        self.mtx_reported = mtx_reported
        self.status_after = None
        super().__init__(self._one_line())

    def _one_line(self) -> str:
        parts = []
        if self.command is not None:
            parts.append(f'{shlex.join(self.command)}: {self.message}')
        else:
            parts.append(self.message)
        sense = [
            f'{name}={value}'
            for name, value in (('Sense Key', self.sense_key), ('ASC', self.asc), ('ASCQ', self.ascq))
            if value
        ]
        if sense:
            parts.append(f'({", ".join(sense)})')
        text = ' '.join(parts)
        if self.asc:
            text += f'; look up ASC/ASCQ {self.asc}/{self.ascq or "??"} at {T10_ASC_LIST}#ASCD_{self.asc}'
        if self.mtx_reported:
            text += f'; {DO_NOT_POWER_CYCLE}'
        return text

    def __str__(self) -> str:
        return self._one_line()


class DriveError(LibraryError):
    """The tape drive or LTFS failed (serial mismatch, format, mount, unmount)."""


class AlreadyFormatted(DriveError):
    """mkltfs refused: the tape already holds an LTFS volume (LTFS15047E)."""


class Unformatted(DriveError):
    """The cartridge holds no LTFS volume (LTFS17168E: medium is not partitioned): format it."""


class IndexBehind(DriveError):
    """ltfs refuses the volume because data lies beyond its last index (LTFS11220E, 'Run ltfsck'):
    what an ltfs that died while writing leaves. ltfsck rolls the volume back to that index; `deep`
    when the end of data is missing too (LTFS17146E), which needs ltfsck --deep-recovery."""

    def __init__(self, message: str, deep: bool = False):
        super().__init__(message)
        self.deep = deep
