"""File ids of the emulator's own: given once, never reused, unchanged by a rename.

A cluster never hands a new file the id of one just deleted, and its creation time does not move.
Inode numbers do both wrong (the kernel reuses a freed inode at once), so each file gets a number
from a counter, kept with its creation time in an extended attribute of the real file together
with the inode it was given to: a copy that carried the attribute along (`cp -a`) is a new file
and gets a new id. Where the backing file system has no user xattrs, the record is kept in memory
by inode and forgotten when the file is removed.
"""

import errno
import os
import stat
import threading

XATTR = 'user.qumulo_sim.id'
COUNTER_XATTR = 'user.qumulo_sim.next_id'
ROOT_ID = '2'  # the root directory's id on a Qumulo cluster
FIRST_ID = 10_000
# Ids are reserved on disk this many at a time, so a restart skips the unused rest of a block
# instead of handing out an id twice.
BLOCK = 1000


class FileIds:
    def __init__(self, root):
        self.root = root
        self._lock = threading.Lock()
        self._memory = {}  # inode -> (id, btime ns), when there are no xattrs
        # The last stat result asked about, per thread: one API call reads the id of the file it
        # looked up several times. Keyed by that very stat object, so it never outlives the call.
        self._last = threading.local()
        self._use_xattr = _xattrs_work(root)
        self._next = self._reserved = self._load_counter()

    def of(self, path, st):
        """The id of the file at `path` (its lstat `st`), given now if it has none."""
        return self.record(path, st)[0]

    def creation_ns(self, path, st):
        return self.record(path, st)[1]

    def record(self, path, st):
        if path == self.root:
            return ROOT_ID, _first_seen_ns(st)
        last = getattr(self._last, 'value', None)
        if last is not None and last[0] is st and last[1] == path:
            return last[2]
        found = self._read(path, st)
        if found:
            self._last.value = (st, path, found)
            return found
        with self._lock:
            found = self._read(path, st)
            if found:
                return found
            file_id = str(self._take())
            found = (file_id, _first_seen_ns(st))
            self._write(path, st, found)
            self._last.value = (st, path, found)
            return found

    def set_creation_ns(self, path, st, btime_ns):
        file_id = self.record(path, st)[0]
        with self._lock:
            self._write(path, st, (file_id, int(btime_ns)))
            self._last.value = None

    def forget(self, st):
        """A removed file: its inode may come back as a new file, which must get a new id."""
        self._memory.pop(st.st_ino, None)

    # --- storage -------------------------------------------------------------------------------
    def _read(self, path, st):
        if not self._use_xattr:
            return self._memory.get(st.st_ino)
        try:
            text = os.getxattr(path, XATTR, follow_symlinks=False).decode()
        except OSError as e:
            # A file without the attribute is new, whatever a file gone before left in memory under
            # its inode; only a symlink (no user xattrs) or a file refusing them keeps its id there.
            if e.errno == errno.ENODATA and not stat.S_ISLNK(st.st_mode):
                return None
            return self._memory.get(st.st_ino)
        try:
            file_id, ino, btime = text.split(':')
        except ValueError:
            return None
        return (file_id, int(btime)) if int(ino) == st.st_ino else None

    def _write(self, path, st, record):
        if not self._use_xattr:
            self._memory[st.st_ino] = record
            return
        value = f'{record[0]}:{st.st_ino}:{record[1]}'.encode()
        try:
            os.setxattr(path, XATTR, value, follow_symlinks=False)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return  # gone already: nothing to keep, and its inode may come back as a new file
            # A symlink cannot carry user xattrs on Linux: keep its id in memory.
            if e.errno not in (errno.EPERM, errno.ENOTSUP):
                raise
            self._memory[st.st_ino] = record

    def _take(self):
        if self._next >= self._reserved:
            self._reserved = self._next + BLOCK
            if self._use_xattr:
                os.setxattr(self.root, COUNTER_XATTR, str(self._reserved).encode())
        self._next += 1
        return self._next - 1

    def _load_counter(self):
        if not self._use_xattr:
            return FIRST_ID
        try:
            return max(FIRST_ID, int(os.getxattr(self.root, COUNTER_XATTR)))
        except (OSError, ValueError):
            return FIRST_ID


def _first_seen_ns(st):
    # The kernel keeps no settable birth time: the earlier of mtime and ctime when the emulator
    # first sees a file is the nearest it has.
    return min(st.st_mtime_ns, st.st_ctime_ns)


def _xattrs_work(root):
    try:
        os.setxattr(root, COUNTER_XATTR, os.getxattr(root, COUNTER_XATTR))
        return True
    except OSError as e:
        if e.errno != errno.ENODATA:
            return False
    try:
        os.setxattr(root, COUNTER_XATTR, str(FIRST_ID).encode())
        return True
    except OSError:
        return False
