"""Change notification fed by real changes under the backing directory (Linux inotify).

One reader thread watches every directory of the tree and turns kernel events into cluster events
with `path` relative to each subscriber's watched directory and `spine` the ids from that
directory down to the changed file. Each subscriber gets one list of events per batch the kernel
hands over, as one `data:` line.

The kernel says only that a file's data or attributes changed; which attribute a cluster would
name (`child_acl_changed` for a chmod, `child_owner_changed`, `child_atime_changed`, ...) is
found by comparing what the file looks like now with what it looked like before (`Look`). The
emulator's own bookkeeping in extended attributes (ids, WORM locks) is no change a cluster would
announce, so it is not part of a Look.

A subscriber that does not keep up is cut off as a cluster cuts it off: past its queue limit no
more events are queued, the events already queued are delivered, the stream ends, and the next
notify request of the same session for the same directory is refused with
fs_watcher_missed_events_error.
"""

import logging
import os
import threading
import time
from collections import deque
from typing import NamedTuple

from inotify_simple import INotify, flags

from .access import ACL_XATTR
from .files import DOS_XATTR

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

# Qumulo's 24 event types (the SDK's FSNotifyFilters). The child_stream_* family concerns
# alternate data streams, which a Linux directory cannot hold: valid in a filter, never raised.
EVENT_TYPES = frozenset(
    {
        'child_file_added',
        'child_dir_added',
        'child_file_removed',
        'child_dir_removed',
        'child_file_moved_from',
        'child_file_moved_to',
        'child_dir_moved_from',
        'child_dir_moved_to',
        'child_btime_changed',
        'child_mtime_changed',
        'child_atime_changed',
        'child_size_changed',
        'child_extra_attrs_changed',
        'child_acl_changed',
        'child_owner_changed',
        'child_group_changed',
        'child_data_written',
        'child_stream_added',
        'child_stream_removed',
        'child_stream_moved_from',
        'child_stream_moved_to',
        'child_stream_size_changed',
        'child_stream_data_written',
        'self_removed',
    }
)
# kernel flag -> (event for a file, event for a directory)
PATH_EVENTS = (
    (flags.CREATE, 'child_file_added', 'child_dir_added'),
    (flags.DELETE, 'child_file_removed', 'child_dir_removed'),
    (flags.MOVED_FROM, 'child_file_moved_from', 'child_dir_moved_from'),
    (flags.MOVED_TO, 'child_file_moved_to', 'child_dir_moved_to'),
)
SIM_XATTRS = 'user.qumulo_sim.'
DEFAULT_QUEUE_LIMIT = 65536
VANISHED_WAIT_MS = 1000  # at most, for the rename or delete of a file gone before its id was read
NEW_FILE = 'new file'  # the Look of a file created and gone again before it could be looked at


class RawLine(bytes):
    """Queued to a subscriber: one line written into its stream as is (malformed events for tests)."""


class End:
    """Queued to a subscriber: the stream must end now (`missed`: because it fell behind)."""

    def __init__(self, missed=False):
        self.missed = missed


class Look(NamedTuple):
    """What a client can see of a file's attributes, to tell which of them a change changed."""

    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    atime_ns: int
    btime_ns: int
    acl: bytes
    extra: tuple  # the file's own extended attributes and Windows attributes (name, value)

    def changes(self, before, is_dir):
        if before is None:
            return []
        found = []
        if self.acl != before.acl or self.mode != before.mode:
            found.append('child_acl_changed')
        if self.uid != before.uid:
            found.append('child_owner_changed')
        if self.gid != before.gid:
            found.append('child_group_changed')
        if self.btime_ns != before.btime_ns:
            found.append('child_btime_changed')
        if self.mtime_ns != before.mtime_ns:
            found.append('child_mtime_changed')
        if self.atime_ns != before.atime_ns:
            found.append('child_atime_changed')
        if self.extra != before.extra:
            found.append('child_extra_attrs_changed')
        if self.size != before.size and not is_dir:
            found.append('child_size_changed')
        return found


class Subscription:
    def __init__(self, dir_path, dir_id, recursive, types, owner, limit):
        self.dir_path = dir_path
        self.dir_id = dir_id
        self.recursive = recursive
        self.types = frozenset(types) if types else None
        self.owner = owner  # the session that asked, to be told later of events it missed
        self.limit = limit
        self._items = deque()
        self._queued_events = 0
        self._cond = threading.Condition()
        self.cut_off = False

    def relative(self, parent):
        """The changed entry's parent, relative to the watched directory; None if not watched."""
        if parent == self.dir_path:
            return ''
        if self.recursive and parent.startswith(self.dir_path + os.sep):
            return parent[len(self.dir_path) + 1 :]
        return None

    def put(self, item):
        """Queue a list of events, a RawLine or an End; False once the subscriber was cut off."""
        with self._cond:
            if self.cut_off:
                return False
            if isinstance(item, list):
                room = self.limit - self._queued_events
                if len(item) > room:
                    # Queue what still fits, then stop: the cluster stops queuing at its limit.
                    if room > 0:
                        self._items.append(item[:room])
                        self._queued_events += room
                    self.cut_off = True
                    item = End(missed=True)
                else:
                    self._queued_events += len(item)
            elif isinstance(item, End):
                self.cut_off = True
            self._items.append(item)
            self._cond.notify()
            return not self.cut_off

    def take(self, timeout):
        """The next item, or None after `timeout` seconds with nothing queued."""
        with self._cond:
            if not self._items and not self._cond.wait_for(lambda: self._items, timeout):
                return None
            item = self._items.popleft()
            if isinstance(item, list):
                self._queued_events -= len(item)
            return item

    def take_nowait(self):
        return self.take(0) if self._items else None


class ChangeHub:
    def __init__(self, fs, queue_limit=DEFAULT_QUEUE_LIMIT):
        self.fs = fs
        self.queue_limit = queue_limit
        self.stalled_until = 0.0  # monotonic: streams hand nothing over before then
        self._inotify = INotify()
        self._dir_of_wd = {}
        self._wd_of_dir = {}
        self._ids = {}  # os path -> id, so a removed entry can still be named by id
        self._looks = {}  # os path -> Look when last seen
        self._new_ids = {}  # os path -> id of files just created, read before the batch is translated
        # Entries a scan of a new directory announced: their own create event, if it follows, is
        # not announced again.
        self._announced = set()
        self._subs = set()
        self._subs_lock = threading.Lock()
        self._missed = set()  # (owner, directory id) of subscribers cut off, until they ask again
        self._add_tree(fs.root)
        threading.Thread(target=self._run, name='notify', daemon=True).start()

    # --- subscribers ---------------------------------------------------------------------------
    def subscribe(self, dir_path, recursive, types, owner=None):
        dir_path = dir_path.rstrip(os.sep) or os.sep
        sub = Subscription(dir_path, self.fs.id_of(dir_path), recursive, types, owner, self.queue_limit)
        with self._subs_lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub):
        with self._subs_lock:
            self._subs.discard(sub)

    def missed_events(self, owner, dir_id):
        """True (once) if this session's last stream on this directory was cut off."""
        with self._subs_lock:
            if (owner, dir_id) in self._missed:
                self._missed.discard((owner, dir_id))
                return True
            return False

    def stall(self, seconds):
        self.stalled_until = time.monotonic() + max(0.0, float(seconds))

    def inject(self, line):
        """Write `line` into every open stream as it stands; returns how many streams got it."""
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            sub.put(RawLine(line.encode()))
        return len(subs)

    def drop_all(self):
        with self._subs_lock:
            subs, self._subs = list(self._subs), set()
        for sub in subs:
            sub.put(End())
        return len(subs)

    def _deliver(self, sub, events):
        if not sub.put(events) and sub.owner is not None:
            with self._subs_lock:
                if sub in self._subs:
                    log.warning('a notify stream on %s fell behind: ending it', sub.dir_path)
                    self._subs.discard(sub)
                    self._missed.add((sub.owner, sub.dir_id))

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
                self._ids.setdefault(path, self.fs.id_of(path))
                entries = list(os.scandir(path))
            except OSError:
                continue
            for entry in entries:
                try:
                    file_id = self.fs.id_of(entry.path, entry.stat(follow_symlinks=False))
                except OSError:
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                self._ids[entry.path] = file_id
                self._looks[entry.path] = self._look(entry.path)
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
        for known in (self._ids, self._looks):
            for path in [p for p in known if p.startswith(prefix)]:
                known[new + path[len(old) :]] = known.pop(path)
        for path in [p for p in self._ids if p.startswith(new + os.sep)]:
            self.fs.remember(self._ids[path], path)
        # A watch follows its directory, as SMB2 CHANGE_NOTIFY does: a watched directory (or one
        # above it) renamed keeps its watchers, with paths under the new name.
        with self._subs_lock:
            for sub in self._subs:
                if sub.dir_path == old or sub.dir_path.startswith(prefix):
                    sub.dir_path = new + sub.dir_path[len(old) :]

    def _drop_tree(self, old):
        prefix = old + os.sep
        for path in [p for p in self._wd_of_dir if p == old or p.startswith(prefix)]:
            wd = self._wd_of_dir.pop(path)
            self._dir_of_wd.pop(wd, None)
            try:
                self._inotify.rm_watch(wd)
            except OSError:
                pass
        for known in (self._ids, self._looks):
            for path in [p for p in known if p.startswith(prefix)]:
                del known[path]
        self._announced = {p for p in self._announced if not p.startswith(prefix)}

    # --- the reader ----------------------------------------------------------------------------
    def _run(self):
        while True:
            try:
                batch = self._inotify.read()
                vanished = self._note_new_files(batch)
                # Created and already gone (renamed from a temporary name, or deleted): wait for the
                # events that say where it went, so every event of the batch names it by its id.
                # Under load they can come well after the create's.
                deadline = time.monotonic() + VANISHED_WAIT_MS / 1000
                while vanished - _left(self._dir_of_wd, batch) and time.monotonic() < deadline:
                    more = self._inotify.read(timeout=10)
                    vanished |= self._note_new_files(more)
                    batch += more
            except OSError:
                log.exception('inotify read failed')
                continue
            try:
                self._dispatch(self._translate(batch))
            except Exception:
                log.exception('could not translate a batch of changes')

    def _note_new_files(self, batch):
        """Learn the id of each new file at once; the paths of those already gone again."""
        vanished = set()
        for event in batch:
            if event.mask & flags.CREATE and not event.mask & flags.ISDIR:
                parent = self._dir_of_wd.get(event.wd)
                if parent:
                    path = os.path.join(parent, event.name)
                    if not self._new_ids.setdefault(path, self._stat_id(path)):
                        vanished.add(path)
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
            if not event.name:
                continue  # a change to a watched directory itself is announced by its parent's watch
            is_dir = bool(event.mask & flags.ISDIR)
            path = os.path.join(parent, event.name)
            if event.mask & (flags.DELETE | flags.MOVED_FROM):
                self._announced.discard(path)
            if event.mask & flags.CREATE and path in self._announced:
                self._announced.discard(path)
                self._new_ids.pop(path, None)
                continue  # already announced by the scan of its new parent directory
            if event.mask & (flags.DELETE | flags.MOVED_FROM):
                # Unknown when it was created and renamed before its id was read, and the rename's
                # events came later than the wait for them: read where the rename put it.
                file_id = self._ids.pop(path, '') or (
                    self._stat_id(later_moves.final_path(path, index - 1)) if event.mask & flags.MOVED_FROM else ''
                )
                ids_by_cookie[event.cookie] = (file_id, self._looks.pop(path, None))
            elif event.mask & flags.MOVED_TO and event.cookie in ids_by_cookie:
                file_id, look = ids_by_cookie[event.cookie]
                if file_id:
                    self._ids[path] = file_id
                self._looks[path] = look if look is not None else self._look(path)
            else:
                file_id = (
                    self._ids.get(path)
                    or self._new_ids.pop(path, '')
                    or self._stat_id(later_moves.final_path(path, index))
                )
                if file_id:
                    self._ids[path] = file_id
            for flag, file_type, dir_type in PATH_EVENTS:
                if event.mask & flag:
                    changes.append((parent, event.name, file_id, dir_type if is_dir else file_type))
            if event.mask & flags.CREATE:
                # Made just now: its size was 0, so the writes that follow also change its size.
                look = self._look(later_moves.final_path(path, index))
                self._looks[path] = look._replace(size=0) if look else NEW_FILE
            elif event.mask & flags.MOVED_TO and event.cookie not in ids_by_cookie:
                self._looks[path] = self._look(path)
            elif event.mask & (flags.MODIFY | flags.ATTRIB):
                now = self._look(later_moves.final_path(path, index))
                changes.extend(
                    (parent, event.name, file_id, kind) for kind in self._attribute_changes(path, now, event)
                )
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
        for old in moved_from.values():  # moved out of the tree: gone, as far as the cluster knows
            for sub in self._subs_under(old):
                changes.append((sub.dir_path, None, sub.dir_id, 'self_removed'))
            self._drop_tree(old)
        self._new_ids.clear()
        return changes

    def _attribute_changes(self, path, now, event):
        """The events a change of data or attributes makes, `now` being how the file looks now
        (None: already gone again)."""
        before = self._looks.get(path)
        is_dir = bool(event.mask & flags.ISDIR)
        if event.mask & flags.MODIFY and not is_dir:
            if now is not None:
                self._looks[path] = now
            if before is NEW_FILE or now is None:
                # Renamed or removed before it could be looked at: a new file's write changed its size.
                return ['child_data_written'] + (['child_size_changed'] if before is NEW_FILE else [])
            kinds = [k for k in now.changes(before, is_dir) if k != 'child_mtime_changed']  # the write's own
            # Data written; a truncation that only shortened the file is a size change alone.
            if before is None or now.size >= before.size:
                kinds.insert(0, 'child_data_written')
            return kinds
        if now is None:
            return []  # already gone: its removal follows
        if before is NEW_FILE:
            self._looks[path] = now._replace(size=0)
            return []
        if before is not None and now.size != before.size:
            # A write is under way whose own event has not been read yet: its size and mtime are
            # that event's to announce.
            now = now._replace(size=before.size, mtime_ns=before.mtime_ns)
        self._looks[path] = now
        return now.changes(before, is_dir)

    def _look(self, path):
        try:
            st = os.lstat(path)
            btime = self.fs.ids.creation_ns(path, st)
            names = os.listxattr(path, follow_symlinks=False)
            acl = os.getxattr(path, ACL_XATTR, follow_symlinks=False) if ACL_XATTR in names else b''
            extra = tuple(
                (name, os.getxattr(path, name, follow_symlinks=False))
                for name in sorted(names)
                if not name.startswith(SIM_XATTRS) or name == DOS_XATTR
            )
        except OSError:
            return None
        return Look(st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_atime_ns, btime, acl, extra)

    def _stat_id(self, path):
        try:
            return self.fs.id_of(path)
        except OSError:
            return ''  # already gone again

    def _subs_under(self, old):
        with self._subs_lock:
            return [s for s in self._subs if s.dir_path == old or s.dir_path.startswith(old + os.sep)]

    def _dispatch(self, changes):
        if not changes:
            return
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            events, ended = [], False
            for parent, name, file_id, kind in changes:
                if kind == 'self_removed':
                    if parent == sub.dir_path:
                        if sub.types is None or kind in sub.types:
                            events.append({'type': kind, 'path': '', 'spine': [file_id], 'stream_name': None})
                        ended = True  # no notification follows self_removed
                        break
                    continue
                if sub.types is not None and kind not in sub.types:
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
                self._deliver(sub, events)
            if ended:
                self.unsubscribe(sub)
                sub.put(End())

    def _spine(self, top, rel):
        spine = [self._ids.get(top, '')]
        path = top
        for part in rel.split(os.sep) if rel else ():
            path = os.path.join(path, part)
            spine.append(self._ids.get(path, ''))
        return spine


def _left(dir_of_wd, batch):
    """The paths that events of the batch say were renamed away or deleted."""
    return {
        os.path.join(dir_of_wd[event.wd], event.name)
        for event in batch
        if event.mask & (flags.MOVED_FROM | flags.DELETE) and event.wd in dir_of_wd
    }


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
