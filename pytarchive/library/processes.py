"""Find the ltfs process serving a mount point and wait for it to exit.

`umount MOUNTPOINT` returns before LTFS has written its index to tape; the ltfs process keeps running
until it has. Moving the tape before that corrupts it, so the drive waits for exactly that process,
woken by the kernel when it exits (a pidfd), never by a fixed sleep.
"""

import os
import select
import time
from typing import Iterable, Optional

_PROC = '/proc'


def normalized_path(path: str) -> str:
    """An absolute, symlink-free form of path that does not touch path itself.

    Only the parent directory is resolved: stat() on the mount point of a hung FUSE file system
    (ltfs busy or stuck) would block, and the parent lives on an ordinary file system.
    """
    absolute = os.path.normpath(os.path.abspath(path))
    parent, name = os.path.split(absolute)
    return os.path.join(os.path.realpath(parent), name) if name else absolute


def ltfs_processes(mountpoint: str) -> list:
    """Pids of running processes whose command line names ltfs and has mountpoint as an argument.

    Matching on the arguments rather than the program name finds the real ltfs as well as a wrapper
    (a script, `python -m ...ltfs`); other programs naming the mount point (umount, ls) do not say
    ltfs anywhere but in the mount point itself, which is not counted.
    """
    target = normalized_path(mountpoint)
    found = []
    for entry in _list_proc():
        pid = int(entry)
        if pid != os.getpid() and _serves(pid, target):
            found.append(pid)
    return found


def wait_for_exit(pids: Iterable[int], mountpoint: str, timeout: float) -> list:
    """Wait until every process in pids has exited; return those still running after timeout seconds."""
    target = normalized_path(mountpoint)
    deadline = time.monotonic() + timeout
    handles = {}
    for pid in pids:
        handle = _open_pidfd(pid)
        # The pid may have been reused between the scan and the open: keep it only if it still serves.
        if handle is not None and handle >= 0 and not _serves(pid, target):
            os.close(handle)
            continue
        if handle is not None:
            handles[pid] = handle
    try:
        return _wait(handles, deadline)
    finally:
        for handle in handles.values():
            if handle >= 0:
                os.close(handle)


def _wait(handles: dict, deadline: float) -> list:
    """handles maps pid -> pidfd, or -1 where pidfds are unavailable (then /proc is polled)."""
    poller = select.poll()
    by_fd = {}
    for pid, handle in handles.items():
        if handle >= 0:
            poller.register(handle, select.POLLIN)
            by_fd[handle] = pid
    waiting = set(handles)
    interval = 0.05
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        polled_by_proc = [pid for pid in waiting if handles[pid] < 0]
        wait_ms = remaining if not polled_by_proc else min(remaining, interval)
        for fd, _ in poller.poll(wait_ms * 1000):
            waiting.discard(by_fd[fd])
            poller.unregister(fd)
        for pid in polled_by_proc:
            if not _running(pid):
                waiting.discard(pid)
        interval = min(interval * 2, 1.0)
    return sorted(waiting)


def _open_pidfd(pid: int) -> Optional[int]:
    """A pidfd for pid; -1 when the kernel offers none (fall back to polling); None if pid is gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except (OSError, AttributeError):
        return -1 if _running(pid) else None


def _running(pid: int) -> bool:
    """True while pid exists and has not exited (a zombie has exited; its parent just did not reap it)."""
    try:
        with open(f'{_PROC}/{pid}/stat', 'rb') as stat:
            fields = stat.read().rsplit(b')', 1)[-1].split()
    except OSError:
        return False
    return bool(fields) and fields[0] not in (b'Z', b'X')


def _serves(pid: int, target: str) -> bool:
    try:
        with open(f'{_PROC}/{pid}/cmdline', 'rb') as cmdline:
            args = [arg.decode('utf-8', 'surrogateescape') for arg in cmdline.read().split(b'\0') if arg]
    except OSError:
        return False
    # Cheap test first, so that paths in unrelated processes (maybe on a hung network share) are
    # never resolved.
    if not any('ltfs' in os.path.basename(arg) for arg in args):
        return False
    cwd = _cwd(pid)
    names_mountpoint = [_resolves_to(arg, cwd, target) for arg in args]
    says_ltfs = any('ltfs' in os.path.basename(arg) for arg, is_target in zip(args, names_mountpoint) if not is_target)
    return says_ltfs and any(names_mountpoint)


def _resolves_to(arg: str, cwd: Optional[str], target: str) -> bool:
    if arg.startswith('-') or os.path.basename(os.path.normpath(arg)) != os.path.basename(target):
        return False
    if os.path.isabs(arg):
        return normalized_path(arg) == target
    return cwd is not None and normalized_path(os.path.join(cwd, arg)) == target


def _cwd(pid: int) -> Optional[str]:
    try:
        return os.readlink(f'{_PROC}/{pid}/cwd')
    except OSError:
        return None


def _list_proc() -> list:
    try:
        return [entry for entry in os.listdir(_PROC) if entry.isdigit()]
    except OSError:
        return []
