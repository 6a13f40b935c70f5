"""Pack a folder's entries into one .tar.zst with GNU tar and zstd, and unpack it again.

Folders of many small files go to tape as one archive: LTFS writes an index entry and a gap per
file, so 200,000 files cost far more than their bytes. The system tools do the work: GNU tar
knows every kind of entry, owner, mode and timestamp, zstd compresses on all cores, and both
stream, so nothing is ever stored uncompressed and the caller's walk overlaps the packing.

tar runs in the C locale with escaped names in its messages (one line per message, the same in
every language), so the names of vanished files can be read back exactly.
"""

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import IO, Callable, Iterable, List, Optional, Tuple, Union

import blake3

from common.errors import ToolError
from pytarchive.transfer import read_chunks, write_all

PROGRESS_EVERY = 4096  # members fed between on_progress calls
PIPE_SIZE = 1 << 20  # the Linux default maximum: fewer wake-ups between the two processes

# GNU format: any name or size, times in whole seconds (restore sets the manifest's exact mtimes);
# measured 10% faster than pax headers, which prepare needs to keep up with `tar -c | zstd`.
# zstd -1: a quarter of -3's CPU for nearly the same size (LTO drives compress in hardware too).
# 256 KiB records: a sixth fewer CPU seconds than tar's 10 KiB writes into the pipe.
# Hard links are stored as files, like every other copy of a folder, so restoring part of it
# never misses a link target. A member gone before tar reads it is a warning, not a failure.
_CREATE = (
    'tar',
    '--create',
    '--file=-',
    '--format=gnu',
    '--blocking-factor=512',
    '--hard-dereference',
    '--no-recursion',
    '--ignore-failed-read',
    '--quoting-style=escape',
)
# Owners by number, as the manifest records them; as root (the service) tar restores owners.
# Directory times and modes are set at the end: members come in the caller's walk order, where a
# directory's entries need not follow it directly. --ignore-zeros: read on to the end of the
# stream, past the end-of-archive blocks, so that zstd finishes (and checks its checksum) instead
# of dying of a broken pipe in the padding of the last record.
_EXTRACT = (
    'tar',
    '--file=-',
    '--numeric-owner',
    '--preserve-permissions',
    '--delay-directory-restore',
    '--ignore-zeros',
    '--quoting-style=escape',
)
_COMPRESS = ('zstd', '-q', '-1', '-T0', '-c')
_DECOMPRESS = ('zstd', '-d', '-q', '-c')

_MESSAGE = re.compile(rb'^tar: ((?:[^\\:]|\\.)*): (.*)$')
_ESCAPE = re.compile(rb'\\([0-7]{1,3}|.)')
_ESCAPES = {b'a': b'\a', b'b': b'\b', b'f': b'\f', b'n': b'\n', b'r': b'\r', b't': b'\t', b'v': b'\v'}
_GONE = (b'No such file or directory', b'Not a directory')
_NOISE = ('tar: Exiting with failure status due to previous errors', 'tar: Error is not recoverable: exiting now')


@dataclass
class PackResult:
    size: int  # bytes of the .tar.zst
    vanished: List[str] = field(default_factory=list)  # members gone before tar read them
    changed: List[str] = field(default_factory=list)  # members tar saw change (or shrink) as it read them


def pack(
    root: str, members: Iterable[str], output: str, on_progress: Optional[Callable[[int], None]] = None
) -> PackResult:
    """Archive `members` (paths relative to root: every entry to keep, in the caller's order) to output.

    `members` may be a lazy walk: tar archives each name as it arrives. The archive is written to
    output + '.partial' and renamed on success. Raises ToolError (one line) when tar or zstd fail
    or a member exists but cannot be read; the partial file is then removed.
    """
    partial = output + '.partial'
    try:
        out = open(partial, 'wb')
    except OSError as error:
        raise ToolError(f'cannot create {partial}: {error.strerror}') from None
    with out, tempfile.TemporaryFile() as tar_errors, tempfile.TemporaryFile() as zstd_errors:
        try:
            tar, zstd = _pipeline(
                [*_CREATE, '-C', root, '--null', '--verbatim-files-from', '--files-from=-'],
                tar_errors,
                list(_COMPRESS),
                out,
                zstd_errors,
            )
            try:
                _feed(tar.stdin, members, on_progress)
            except BaseException:
                _kill(tar, zstd)
                raise
            finally:
                _close_quietly(tar.stdin)
                tar.wait()
                zstd.wait()
            vanished, changed, unreadable = _read_messages(tar_errors)
            _check((tar, tar_errors, (0, 1)), (zstd, zstd_errors, (0,)), unreadable=unreadable)
            size = os.fstat(out.fileno()).st_size
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
    os.replace(partial, output)
    return PackResult(size, vanished, changed)


def unpack(
    source: Union[str, Iterable[bytes]], destination: Union[str, int], members: Optional[List[str]] = None
) -> str:
    """Extract a .tar.zst (a path, or its bytes in chunks) into destination; the BLAKE3 hex digest of its bytes.

    destination: a folder's path, or an open descriptor of it: tar then writes into that very
    folder (through /proc/self/fd/N, inherited), whatever its name leads to by now.
    members: only these relative paths (a directory brings everything under it); None: all;
    []: none (the archive is still read through and checked). Owners, modes and times are
    restored. Raises ToolError (one line) when zstd or tar fail, e.g. on a damaged archive.
    """
    inherited = (destination,) if isinstance(destination, int) else ()
    folder = f'/proc/self/fd/{destination}' if inherited else destination
    action = ['--list' if members == [] else '--extract', '-C', folder]  # -C before the names
    with (
        tempfile.TemporaryFile() as tar_errors,
        tempfile.TemporaryFile() as zstd_errors,
        tempfile.NamedTemporaryFile() as names,
    ):
        if members:
            names.write(b''.join(os.fsencode(member) + b'\0' for member in members))
            names.flush()
            action += ['--null', '--verbatim-files-from', '--files-from=' + names.name]
        zstd, tar = _pipeline(
            list(_DECOMPRESS), zstd_errors, [*_EXTRACT, *action], subprocess.DEVNULL, tar_errors, second_fds=inherited
        )
        digest = blake3.blake3()
        try:
            chunks = read_chunks(source, 1 << 20) if isinstance(source, (str, os.PathLike)) else source
            for chunk in chunks:
                digest.update(chunk)
                write_all(zstd.stdin.fileno(), memoryview(chunk))
        except BrokenPipeError:
            pass  # zstd or tar stopped early: their messages say why
        except BaseException:
            _kill(zstd, tar)
            raise
        finally:
            _close_quietly(zstd.stdin)
            zstd.wait()
            tar.wait()
        _check((zstd, zstd_errors, (0,)), (tar, tar_errors, (0,)))
    return digest.hexdigest()


def _pipeline(
    first: List[str],
    first_errors: IO[bytes],
    second: List[str],
    output: Union[IO[bytes], int],
    second_errors: IO[bytes],
    second_fds: Tuple[int, ...] = (),
) -> Tuple[subprocess.Popen, subprocess.Popen]:
    """Start `first | second > output`, both in the C locale; the caller writes to first.stdin.
    second_fds: descriptors the second process inherits."""
    env = dict(os.environ, LC_ALL='C')
    try:
        head = subprocess.Popen(
            first, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=first_errors, env=env, bufsize=1 << 16
        )
    except OSError as error:
        raise ToolError(f'cannot run {first[0]}: {error.strerror}') from None
    for pipe in (head.stdin, head.stdout):
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    try:
        tail = subprocess.Popen(
            second, stdin=head.stdout, stdout=output, stderr=second_errors, env=env, pass_fds=second_fds
        )
    except OSError as error:
        _kill(head)
        _close_quietly(head.stdin)
        head.wait()
        raise ToolError(f'cannot run {second[0]}: {error.strerror}') from None
    finally:
        head.stdout.close()
    return head, tail


def _feed(stdin: IO[bytes], members: Iterable[str], on_progress: Optional[Callable[[int], None]]) -> None:
    count = 0
    try:
        for member in members:
            stdin.write(os.fsencode(member) + b'\0')
            count += 1
            if on_progress is not None and count % PROGRESS_EVERY == 0:
                on_progress(count)
        stdin.flush()
    except BrokenPipeError:
        return  # tar stopped: its messages say why
    if on_progress is not None:
        on_progress(count)


def _read_messages(errors: IO[bytes]) -> Tuple[List[str], List[str], Optional[str]]:
    """What tar said about members: (vanished, changed, the first line about an unreadable one)."""
    vanished: List[str] = []
    changed: List[str] = []
    unreadable = None
    errors.seek(0)
    for line in errors.read().splitlines():
        match = _MESSAGE.match(line)
        if not match:
            continue
        name, text = os.fsdecode(_unescape(match.group(1))), match.group(2)
        if text.startswith(b'Warning: Cannot ') and text.endswith(_GONE):
            vanished.append(name)
        elif text.startswith(b'Warning: Cannot '):  # e.g. Permission denied, Input/output error
            unreadable = unreadable or line.decode('utf-8', 'replace')
        elif text == b'file changed as we read it' or text.startswith(b'File shrank by '):
            changed.append(name)
    return vanished, changed, unreadable


def _unescape(name: bytes) -> bytes:
    def one(match: 're.Match[bytes]') -> bytes:
        code = match.group(1)
        return bytes([int(code, 8)]) if code[:1].isdigit() else _ESCAPES.get(code, code)

    return _ESCAPE.sub(one, name)


def _check(*runs: Tuple[subprocess.Popen, IO[bytes], Tuple[int, ...]], unreadable: Optional[str] = None) -> None:
    """Raise ToolError with the line that explains a failure, preferring the cause over a broken pipe."""
    failures = []
    for process, errors, fine in runs:
        if process.returncode not in fine:
            errors.seek(0)
            lines = [
                line
                for line in errors.read().decode('utf-8', 'replace').splitlines()
                if line.strip() and line not in _NOISE
            ]
            if lines:
                line = lines[-1].strip()
                failures.append(line if line.startswith(process.args[0] + ': ') else f'{process.args[0]}: {line}')
            elif process.returncode < 0:
                failures.append(f'{process.args[0]} killed by {signal.Signals(-process.returncode).name}')
            else:
                failures.append(f'{process.args[0]} exited with status {process.returncode}')
    if unreadable:
        failures.insert(0, unreadable)
    causes = [line for line in failures if 'Broken pipe' not in line and 'SIGPIPE' not in line]
    if failures:
        raise ToolError((causes or failures)[0])


def _kill(*processes: subprocess.Popen) -> None:
    for process in processes:
        with contextlib.suppress(OSError):
            process.kill()


def _close_quietly(stream: IO[bytes]) -> None:
    with contextlib.suppress(BrokenPipeError):
        stream.close()
