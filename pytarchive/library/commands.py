"""Run one external tool (mtx, tapeinfo, mkltfs, ltfs, umount) with a deadline and collect its output."""

import logging
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Sequence

log = logging.getLogger(__name__)


class CommandNotRun(Exception):
    """The command could not be started or did not finish in time.

    str() is one line that does not repeat the command line: callers put it in front.
    """

    def __init__(self, message: str, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class Finished:
    argv: tuple
    returncode: int
    stdout: str
    stderr: str

    @property
    def shown(self) -> str:
        """The command line as a user would type it, for messages."""
        return shlex.join(self.argv)


def run_command(
    argv: Sequence[str], timeout: float, setting: str = 'the command path in the [Device] config'
) -> Finished:
    """Run argv to completion (no shell, stdin closed) and return its exit status and output.

    Output goes to temporary files rather than pipes: `ltfs` forks a daemon that may keep the
    inherited stdout open for as long as the volume is mounted, and a pipe would then never reach
    end-of-file. With files, only the exit of the command itself is waited for. `setting` names
    where the command is configured, for a command not found.
    """
    argv = tuple(argv)
    if not argv:
        raise CommandNotRun('no command configured (empty command line)')
    log.debug('running %s', shlex.join(argv))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            completed = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout, check=False
            )
        except FileNotFoundError:
            raise CommandNotRun(f'{argv[0]} not found (check {setting})') from None
        except PermissionError:
            raise CommandNotRun(f'{argv[0]} is not executable (permission denied)') from None
        except subprocess.TimeoutExpired:
            raise CommandNotRun(f'did not finish within {timeout:g} s and was killed', timed_out=True) from None
        except OSError as error:
            raise CommandNotRun(f'cannot run {argv[0]}: {error.strerror or error}') from None
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode('utf-8', errors='replace')
        stderr = err.read().decode('utf-8', errors='replace')
    log.debug('%s exited with %d', argv[0], completed.returncode)
    return Finished(argv, completed.returncode, stdout, stderr)
