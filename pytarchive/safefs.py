"""Create and change entries below a folder that its owner may be changing at the same time.

The service restores as root into folders that users can write to. A path is looked up again by
the kernel at every use, so a folder checked a minute ago may be a link now, and a name chosen in
advance may already be a link to /etc/shadow. Here nothing is reached by path below the
destination: each folder is opened from its parent's descriptor, one name at a time, with
O_NOFOLLOW|O_DIRECTORY; files are created with O_EXCL|O_NOFOLLOW under random names; owners, modes
and times are set through descriptors or without following links. A link, a file, or a folder
someone else made, found where a folder is expected, raises InTheWay: never followed, never removed.
"""

import errno
import os
import secrets
import stat
from typing import List, Optional, Tuple

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KEEP_EVERY = 16  # Tree keeps every 16th level open (and the deepest): few descriptors at any depth
_MAX_LINKS = 40  # as the kernel's own limit when resolving a path


class InTheWay(Exception):
    """path (relative to the tree, or absolute) is not the folder expected there: `why` says what it is."""

    def __init__(self, path: str, why: str):
        super().__init__(f'{path}: {why}')
        self.path = path
        self.why = why


def _what(dir_fd: int, name: str) -> str:
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return 'gone'
    return 'a link' if stat.S_ISLNK(mode) else 'a folder' if stat.S_ISDIR(mode) else 'a file'


def open_folder(dir_fd: int, name: str, shown: str, create: bool = False) -> Optional[int]:
    """The folder `name` in dir_fd, opened without following a link; None if absent and not create.

    A folder created here is made by this process (mode 0755, owned by it); if what is then opened
    under that name belongs to someone else, it was swapped in between: InTheWay.
    """
    created = False
    if create:
        try:
            os.mkdir(name, 0o755, dir_fd=dir_fd)
            created = True
        except FileExistsError:
            pass
    try:
        fd = os.open(name, _FOLDER, dir_fd=dir_fd)
    except FileNotFoundError:
        if create:
            raise
        return None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):  # O_NOFOLLOW met a link, O_DIRECTORY a file
            raise InTheWay(shown, _what(dir_fd, name)) from None
        raise
    if created and os.fstat(fd).st_uid != os.geteuid():
        os.close(fd)
        raise InTheWay(shown, 'replaced by another folder while being restored')
    return fd


def open_destination(path: str, create: bool) -> Optional[int]:
    """The folder at the absolute `path`, each component opened without following links (created if
    missing and create; None if missing and not). A link on the way is followed only if no one but
    root could have made it (owned by root, in a folder only root can write): /home -> /data/home is
    fine, a link a user planted is InTheWay."""
    pending = [part for part in path.split('/') if part]
    fd = os.open('/', _FOLDER)
    walked, links = '', 0
    try:
        while pending:
            name = pending.pop(0)
            shown = f'{walked}/{name}'
            try:
                child = open_folder(fd, name, shown, create)
            except InTheWay as error:
                if error.why == 'a file':  # as the kernel would say it: --to under a file
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), shown) from None
                if error.why != 'a link' or not _trusted_link(fd, name) or links >= _MAX_LINKS:
                    raise
                links += 1
                target = os.readlink(name, dir_fd=fd)
                pending[:0] = [part for part in target.split('/') if part]
                if target.startswith('/'):
                    os.close(fd)
                    fd, walked = os.open('/', _FOLDER), ''
                continue
            if child is None:
                os.close(fd)
                return None
            os.close(fd)
            fd, walked = child, shown
        return fd
    except BaseException:
        os.close(fd)
        raise


def _trusted_link(dir_fd: int, name: str) -> bool:
    folder = os.fstat(dir_fd)
    link = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    return link.st_uid == 0 and folder.st_uid == 0 and not folder.st_mode & 0o022


class Tree:
    """Folders below an open folder by relative path ('a/b'), each level opened from its parent.

    The levels of the last path asked for stay open (every _KEEP_EVERY-th one and the deepest), so
    walking a manifest in path order opens each folder about once, at any depth, with a bounded
    number of descriptors. Owns root_fd: close() closes it.
    """

    def __init__(self, root_fd: int):
        self._names: List[str] = []
        self._fds: List[Optional[int]] = [root_fd]

    @property
    def root(self) -> int:
        return self._fds[0]

    def folder(self, relative: str, create: bool = False) -> Optional[int]:
        """The descriptor of folder `relative` ('' is the root), valid until the next call; None if
        absent and not create. Raises InTheWay for a link or file on the way."""
        parts = relative.split('/') if relative else []
        same = 0
        while same < min(len(parts), len(self._names)) and parts[same] == self._names[same]:
            same += 1
        self._cut(same)
        self._reopen_deepest()
        for name in parts[same:]:
            fd = open_folder(self._fds[-1], name, '/'.join([*self._names, name]), create)
            if fd is None:
                return None
            self._names.append(name)
            self._fds.append(fd)
            parent = len(self._fds) - 2
            if parent % _KEEP_EVERY:
                os.close(self._fds[parent])
                self._fds[parent] = None
        return self._fds[-1]

    def _cut(self, depth: int) -> None:
        while len(self._names) > depth:
            self._names.pop()
            fd = self._fds.pop()
            if fd is not None:
                os.close(fd)

    def _reopen_deepest(self) -> None:
        if self._fds[-1] is not None:
            return
        kept = max(level for level, fd in enumerate(self._fds) if fd is not None)
        for level in range(kept + 1, len(self._fds)):
            name = self._names[level - 1]
            self._fds[level] = open_folder(self._fds[level - 1], name, '/'.join(self._names[:level]))
            if self._fds[level] is None:
                raise FileNotFoundError(
                    2, 'No such file or directory (removed during the restore)', '/'.join(self._names[:level])
                )
            if level - 1 > kept:
                os.close(self._fds[level - 1])
                self._fds[level - 1] = None

    def close(self) -> None:
        self._cut(0)
        os.close(self._fds[0])

    def __enter__(self) -> 'Tree':
        return self

    def __exit__(self, *_) -> None:
        self.close()


def lstat(dir_fd: int, name: str) -> Optional[os.stat_result]:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def private_folder(dir_fd: int, prefix: str) -> Tuple[str, int]:
    """A new folder only this process can enter (0700), under prefix + a random part; (name, fd)."""
    while True:
        name = prefix + secrets.token_hex(8)
        try:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
        except FileExistsError:
            continue
        fd = open_folder(dir_fd, name, name)
        info = os.fstat(fd)
        if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) != 0o700:
            os.close(fd)
            raise InTheWay(name, 'replaced by another folder as it was made')
        return name, fd


def is_private_folder(info: os.stat_result) -> bool:
    """What private_folder() makes (a leftover of a run cut short, safe to remove), and not a user's."""
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) == 0o700


def create_file(dir_fd: int, prefix: str) -> Tuple[str, int]:
    """A new empty file (0600) under prefix + a random part, never an existing entry; (name, fd)."""
    while True:
        name = prefix + secrets.token_hex(8)
        try:
            return name, os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd
            )
        except FileExistsError:
            continue


def set_metadata(fd: int, uid: int, gid: int, mode: int, mtime: Optional[float] = None) -> None:
    """Owner first: chown clears the set-user-ID bits that chmod then sets."""
    os.fchown(fd, uid, gid)
    os.fchmod(fd, mode)
    if mtime is not None:
        os.utime(fd, (mtime, mtime))


def set_link_metadata(dir_fd: int, name: str, uid: int, gid: int, mtime: float) -> None:
    os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
    os.utime(name, (mtime, mtime), dir_fd=dir_fd, follow_symlinks=False)


def place(from_fd: int, from_name: str, to_fd: int, to_name: str, replace: bool) -> None:
    """Move an entry (a file or a link, never followed) to its final name.

    replace: over a file or link there (never over a folder: InTheWay). Otherwise an existing entry
    is kept: FileExistsError (hard link then unlink, as rename cannot refuse to replace).
    """
    try:
        if replace:
            os.rename(from_name, to_name, src_dir_fd=from_fd, dst_dir_fd=to_fd)
        else:
            os.link(from_name, to_name, src_dir_fd=from_fd, dst_dir_fd=to_fd, follow_symlinks=False)
            os.unlink(from_name, dir_fd=from_fd)
    except (IsADirectoryError, FileExistsError) as error:
        what = _what(to_fd, to_name)
        if what == 'a folder' or isinstance(error, IsADirectoryError):
            raise InTheWay(to_name, what) from None
        raise


def create_link(dir_fd: int, target: str, prefix: str) -> str:
    """A new symlink to target (as written) under prefix + a random part; its name."""
    while True:
        name = prefix + secrets.token_hex(8)
        try:
            os.symlink(target, name, dir_fd=dir_fd)
            return name
        except FileExistsError:
            continue


def remove_contents(fd: int) -> None:
    """Empty the open folder fd, following no link, at any depth (a stack of names, not recursion)."""
    with Tree(os.dup(fd)) as tree:
        path: List[str] = []
        while True:
            folder = tree.folder('/'.join(path))
            child = None
            with os.scandir(folder) as listing:
                for entry in listing:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    os.unlink(entry.name, dir_fd=folder)
            if child is not None:
                path.append(child)
                continue
            if not path:
                return
            last = path.pop()
            os.rmdir(last, dir_fd=tree.folder('/'.join(path)))


def remove_private_folder(dir_fd: int, name: str, fd: int) -> None:
    """Remove what private_folder() made, by its descriptor; its name only if it is still that folder
    (a user who renamed it away and put something else there keeps what they put)."""
    remove_contents(fd)
    info, now = os.fstat(fd), lstat(dir_fd, name)
    if now is not None and (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino):
        os.rmdir(name, dir_fd=dir_fd)


def remove_private_folders(dir_fd: int, prefix: str) -> None:
    """Remove the folders private_folder(dir_fd, prefix) made in runs cut short; leave anything else
    with such a name (a user may have made it) alone."""
    with os.scandir(dir_fd) as listing:
        names = [entry.name for entry in listing if entry.name.startswith(prefix)]
    for name in names:
        try:
            fd = open_folder(dir_fd, name, name)
        except InTheWay:
            continue
        if fd is None:
            continue
        try:
            if is_private_folder(os.fstat(fd)):
                remove_private_folder(dir_fd, name, fd)
        finally:
            os.close(fd)
