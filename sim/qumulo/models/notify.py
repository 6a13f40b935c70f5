"""Change notification fed by real changes under the backing directory (Linux inotify).

One reader thread watches every directory of the tree and turns kernel events into cluster events
(`child_file_added`, `child_data_written`, ...) with `path` relative to each subscriber's watched
directory and `spine` the ids from that directory down to the changed file. Each subscriber gets one
list of events per batch the kernel hands over, as one `data:` line.
"""

import logging
import os
import queue
import threading

from inotify_simple import INotify, flags

log = logging.getLogger(__name__)

WATCH_MASK = (
    flags.CREATE
    | flags.DELETE
    | flags.MODIFY
    | flags.ATTRIB
    | flags.MOVED_FROM
    | flags.MOVED_TO
    | flags.DELETE_SELF
    | flags.EXCL_UNLINK
    | flags.ONLYDIR
)

# kernel flag -> (event for a file, event for a directory)
EVENT_TYPES = (
    (flags.CREATE, 'child_file_added', 'child_dir_added'),
    (flags.DELETE, 'child_file_removed', 'child_dir_removed'),
    (flags.MOVED_FROM, 'child_file_moved_from', 'child_dir_moved_from'),
    (flags.MOVED_TO, 'child_file_moved_to', 'child_dir_moved_to'),
    (flags.MODIFY, 'child_data_written', None),
    (flags.ATTRIB, 'child_mtime_changed', 'child_mtime_changed'),
)

VANISHED_WAIT_MS = 20
END = None  # queued to a subscriber: the stream must end now


class RawLine(bytes):
    """Queued to a subscriber: one line written into its stream as is (malformed events for tests)."""


class Subscription:
    def __init__(self, dir_path, recursive, types):
        self.dir_path = dir_path
        self.recursive = recursive
        self.types = frozenset(types) if types else None
        self.queue = queue.SimpleQueue()

    def relative(self, parent):
        """The changed entry's parent, relative to the watched directory; None if not watched."""
        if parent == self.dir_path:
            return ''
        if self.recursive and parent.startswith(self.dir_path + os.sep):
            return parent[len(self.dir_path) + 1 :]
        return None


class ChangeHub:
    def __init__(self, fs):
        self.fs = fs
        self._inotify = INotify()
        self._dir_of_wd = {}
        self._wd_of_dir = {}
        self._ids = {}  # os path -> id, so a removed entry can still be named by id
        self._new_ids = {}  # os path -> id of files just created, read before the batch is translated
        # Entries a scan of a new directory announced: their own create event, if it follows, is
        # not announced again.
        self._announced = set()
        self._subs = set()
        self._subs_lock = threading.Lock()
        # os path -> mtime when the emulator itself last changed the file's attributes (its lock):
        # an attribute change that leaves that mtime alone is the emulator's and is not announced.
        self._quiet = {}
        self._add_tree(fs.root)
        threading.Thread(target=self._run, name='notify', daemon=True).start()

    # --- subscribers ---------------------------------------------------------------------------
    def subscribe(self, dir_path, recursive, types):
        sub = Subscription(dir_path.rstrip(os.sep) or os.sep, recursive, types)
        with self._subs_lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub):
        with self._subs_lock:
            self._subs.discard(sub)

    def ignore_next_attribute_change(self, path):
        try:
            self._quiet[path] = os.lstat(path).st_mtime_ns
        except OSError:
            pass

    def inject(self, line):
        """Write `line` into every open stream as it stands; returns how many streams got it."""
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            sub.queue.put(RawLine(line.encode()))
        return len(subs)

    def drop_all(self):
        with self._subs_lock:
            subs, self._subs = list(self._subs), set()
        for sub in subs:
            sub.queue.put(END)
        return len(subs)

    # --- watches -------------------------------------------------------------------------------
    def _add_tree(self, top, announce=None):
        """Watch `top` and every directory below it; `announce(parent, name, id, is_dir)` is
        called for entries found, so files created before the watch existed are not missed."""
        stack = [top]
        while stack:
            path = stack.pop()
            try:
                wd = self._inotify.add_watch(path, WATCH_MASK)
                self._dir_of_wd[wd] = path
                self._wd_of_dir[path] = wd
                self._ids[path] = str(os.lstat(path).st_ino)
                entries = list(os.scandir(path))
            except OSError:
                continue
            for entry in entries:
                file_id = str(entry.inode())
                is_dir = entry.is_dir(follow_symlinks=False)
                self._ids[entry.path] = file_id
                self.fs.remember(file_id, entry.path)
                if announce:
                    self._announced.add(entry.path)
                    announce(path, entry.name, file_id, is_dir)
                if is_dir:
                    stack.append(entry.path)

    def _move_tree(self, old, new):
        prefix = old + os.sep
        for path in [p for p in self._wd_of_dir if p == old or p.startswith(prefix)]:
            wd = self._wd_of_dir.pop(path)
            moved = new + path[len(old) :]
            self._wd_of_dir[moved] = wd
            self._dir_of_wd[wd] = moved
        for path in [p for p in self._ids if p.startswith(prefix)]:
            moved = new + path[len(old) :]
            self._ids[moved] = self._ids.pop(path)
            self.fs.remember(self._ids[moved], moved)

    def _drop_tree(self, old):
        prefix = old + os.sep
        for path in [p for p in self._wd_of_dir if p == old or p.startswith(prefix)]:
            wd = self._wd_of_dir.pop(path)
            self._dir_of_wd.pop(wd, None)
            try:
                self._inotify.rm_watch(wd)
            except OSError:
                pass
        for path in [p for p in self._ids if p.startswith(prefix)]:
            del self._ids[path]
            self._announced.discard(path)

    # --- the reader ----------------------------------------------------------------------------
    def _run(self):
        while True:
            try:
                batch = self._inotify.read()
                if self._note_new_files(batch):
                    # Created and already renamed (a temporary name): wait briefly for the rename's
                    # events, so the file is found under its new name and named by its id.
                    batch += self._inotify.read(timeout=VANISHED_WAIT_MS)
            except OSError:
                log.exception('inotify read failed')
                continue
            try:
                self._dispatch(self._translate(batch))
            except Exception:
                log.exception('could not translate a batch of changes')

    def _note_new_files(self, batch):
        """Learn the id of each new file at once; True if one is already gone again."""
        vanished = False
        for event in batch:
            if event.mask & flags.CREATE and not event.mask & flags.ISDIR:
                parent = self._dir_of_wd.get(event.wd)
                if parent:
                    path = os.path.join(parent, event.name)
                    vanished |= not self._new_ids.setdefault(path, self._stat_id(path, remember=False))
        return vanished

    def _translate(self, batch):
        changes = []  # (parent os path, name, id, type)
        moved_from = {}  # cookie -> old os path of a directory

        def announce(parent, name, file_id, is_dir):
            changes.append((parent, name, file_id, 'child_dir_added' if is_dir else 'child_file_added'))

        later_moves = _MovesInBatch(self._dir_of_wd, batch)
        ids_by_cookie = {}
        for index, event in enumerate(batch):
            if event.mask & flags.Q_OVERFLOW:
                log.warning('kernel change queue overflowed: ending every notify stream')
                self._new_ids.clear()
                self.drop_all()
                return []
            parent = self._dir_of_wd.get(event.wd)
            if parent is None:
                continue
            if event.mask & flags.IGNORED:
                self._wd_of_dir.pop(parent, None)
                self._dir_of_wd.pop(event.wd, None)
                continue
            if event.mask & flags.DELETE_SELF:
                changes.append((parent, None, self._ids.get(parent, ''), 'self_removed'))
                continue
            is_dir = bool(event.mask & flags.ISDIR)
            path = os.path.join(parent, event.name)
            if event.mask & flags.ATTRIB and path in self._quiet and self._mtime(path) == self._quiet[path]:
                continue
            if event.mask & (flags.DELETE | flags.MOVED_FROM):
                self._quiet.pop(path, None)
                self._announced.discard(path)
            if event.mask & flags.CREATE and path in self._announced:
                self._announced.discard(path)
                self._new_ids.pop(path, None)
                continue  # already announced by the scan of its new parent directory
            if event.mask & (flags.DELETE | flags.MOVED_FROM):
                file_id = self._ids.pop(path, '')
                ids_by_cookie[event.cookie] = file_id
            elif event.mask & flags.MOVED_TO and ids_by_cookie.get(event.cookie):
                file_id = self._ids[path] = ids_by_cookie[event.cookie]
            else:
                file_id = (
                    self._ids.get(path)
                    or self._new_ids.pop(path, '')
                    or self._stat_id(later_moves.final_path(path, index))
                )
                if file_id:
                    self._ids[path] = file_id
            for flag, file_type, dir_type in EVENT_TYPES:
                if event.mask & flag:
                    kind = dir_type if is_dir else file_type
                    if kind:
                        changes.append((parent, event.name, file_id, kind))
            if is_dir and event.mask & flags.MOVED_FROM:
                moved_from[event.cookie] = path
            elif is_dir and event.mask & flags.MOVED_TO and event.cookie in moved_from:
                self._move_tree(moved_from.pop(event.cookie), path)
            elif is_dir and event.mask & flags.CREATE:
                self._add_tree(path, announce)
            elif is_dir and event.mask & flags.MOVED_TO:
                # Moved in from outside the emulator's directory, as if from elsewhere in the
                # cluster: watched from now on, but what it already holds is not announced, for a
                # real cluster sends no events for the contents of a moved directory.
                self._add_tree(path)
            if file_id and not event.mask & (flags.DELETE | flags.MOVED_FROM):
                self.fs.remember(file_id, path)
        for old in moved_from.values():  # moved out of the tree
            self._drop_tree(old)
        self._new_ids.clear()
        return changes

    @staticmethod
    def _mtime(path):
        try:
            return os.lstat(path).st_mtime_ns
        except OSError:
            return None

    def _stat_id(self, path, remember=True):
        try:
            file_id = str(os.lstat(path).st_ino)
        except OSError:
            return ''  # already gone again
        if remember:
            self._ids[path] = file_id
        return file_id

    def _dispatch(self, changes):
        if not changes:
            return
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            events = []
            for parent, name, file_id, kind in changes:
                if sub.types is not None and kind not in sub.types:
                    continue
                if kind == 'self_removed':
                    if parent == sub.dir_path:
                        events.append({'type': kind, 'path': '', 'spine': [file_id], 'stream_name': None})
                    continue
                rel = sub.relative(parent)
                if rel is None:
                    continue
                events.append(
                    {
                        'type': kind,
                        'path': os.path.join(rel, name) if rel else name,
                        'spine': self._spine(sub.dir_path, rel) + [file_id],
                        'stream_name': None,
                    }
                )
            if events:
                sub.queue.put(events)

    def _spine(self, top, rel):
        spine = [self._ids.get(top, '')]
        path = top
        for part in rel.split(os.sep) if rel else ():
            path = os.path.join(path, part)
            spine.append(self._ids.get(path, ''))
        return spine


class _MovesInBatch:
    """Where an entry ended up after the renames later in the same batch: a file created and
    renamed before we read the events is found, and named by its id, under its final name."""

    def __init__(self, dir_of_wd, batch):
        self._moved_from = {}  # path -> [(index, cookie)]
        self._moved_to = {}  # cookie -> path
        for index, event in enumerate(batch):
            parent = dir_of_wd.get(event.wd)
            if parent is None or not event.mask & (flags.MOVED_FROM | flags.MOVED_TO):
                continue
            path = os.path.join(parent, event.name)
            if event.mask & flags.MOVED_FROM:
                self._moved_from.setdefault(path, []).append((index, event.cookie))
            else:
                self._moved_to[event.cookie] = path

    def final_path(self, path, index):
        for _ in range(64):  # a chain of renames, bounded against cycles
            step = next(((i, c) for i, c in self._moved_from.get(path, ()) if i > index), None)
            if step is None or step[1] not in self._moved_to:
                return path
            index, path = step[0], self._moved_to[step[1]]
        return path
