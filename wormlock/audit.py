"""Evidence for auditors: one JSON line per action on a file, appended and flushed as it happens,
each line chained to the one before it so that an edited, removed or reordered line shows.

The chain (checked by verify.py, `--verify-audit`): each line carries `seq`, its number in the
chain (1, 2, ...); `prev`, the `hash` of the line before it (GENESIS for the first line of a
chain); and `hash`, the SHA-256 of the line's canonical JSON without `hash` itself (keys sorted, no
spaces, ASCII only), so `prev` is covered. A line is written as `json.dumps(record,
sort_keys=True)`; a line written otherwise was not written by the tool.

Where the chain goes on from when the log is opened: its last line, when it has one; when it is
empty (rotated while no watcher ran), the state file FILE.chain next to it, which holds the last
`seq` and `hash` written and is rewritten after every line; with neither, a new chain (GENESIS).
The state file is also what keeps a second watcher off the same log (it holds a lock on it), and
what lets `--verify-audit` notice lines cut off the end of the log.

Rotation (deploy/qfs_filelock.logrotate): logrotate's copytruncate copies the file and empties
it in place, and the watcher writes on into the emptied file, its chain going on from memory. A
line written after the copy was taken and before the file was emptied would be in neither file,
so when the log is found emptied, the lines written in the REPEAT_WINDOW_S before that are written
again, verbatim: `--verify-audit` accepts a file that begins with such repeats of the end of the
file before it. A rotation by renaming (no copytruncate) is noticed too: the watcher writes on in
a new FILE. A FILE that is not a regular file (a pipe, /dev/stdout) has no state file: its chain
begins anew at every start.
"""

import collections
import datetime as dt
import errno
import fcntl
import gzip
import hashlib
import json
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Deque, Dict, List, Mapping, Optional, Tuple

from .errors import AlreadyRunning, BadOption
from .locker import Outcome

log = logging.getLogger(__name__)

GENESIS = '0' * 64  # `prev` of a chain's first line
STATE_SUFFIX = '.chain'
# After logrotate's copytruncate, the lines written this long before the file was emptied are
# written again: the copy ends a moment before the truncation, and the lines in between are lost
# otherwise. Generous, as a rotation is monthly and a repeat costs only a line.
REPEAT_WINDOW_S = 30
REPEAT_MAX_LINES = 100_000  # at most this many kept to be written again (memory, in a burst)
TAIL_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Link:
    """Where a chain stands: the last line's number and hash (0 and GENESIS: no line yet)."""

    seq: int
    hash: str


START = Link(0, GENESIS)


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash is taken over: its JSON without `hash`, keys sorted, no spaces."""
    body = {k: v for k, v in record.items() if k != 'hash'}
    return json.dumps(body, sort_keys=True, separators=(',', ':'), ensure_ascii=True).encode()


def digest(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def line_of(record: Mapping[str, Any]) -> str:
    """A record as the tool writes it, without the newline."""
    return json.dumps(record, sort_keys=True)


def is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in '0123456789abcdef' for c in value)


def link_of(record: Mapping[str, Any]) -> Optional[Link]:
    """The record's place in the chain; None for a line written before the chain (no hash)."""
    seq = record.get('seq')
    if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 and is_hash(record.get('hash')):
        return Link(seq, record['hash'])
    return None


def state_path(path: str) -> str:
    return path + STATE_SUFFIX


def read_state(path: str) -> Optional[Link]:
    """The chain state next to the audit log FILE (FILE.chain); None when there is none.
    ValueError: the file holds something else."""
    try:
        with open(state_path(path), encoding='ascii') as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise ValueError('not text') from None
    if not text:
        return None  # made, and nothing written yet
    words = text.split()
    if len(words) != 2 or not words[0].isdigit() or not is_hash(words[1]):
        raise ValueError(f'{text[:100]!r} is not a record number and a hash')
    return Link(int(words[0]), words[1])


def _state_text(link: Link) -> bytes:
    # Fixed width, written over itself in place: never a moment with a shorter or empty file.
    return f'{link.seq:020d} {link.hash}\n'.encode()


def last_link(path: str) -> Optional[Link]:
    """The chain's last link in the log file: that of its last chained line; None when it has no
    line at all, or its last line is one written before the chain began (no hash)."""
    with open(path, 'rb') as f:
        size = f.seek(0, os.SEEK_END)
        chunk = TAIL_CHUNK
        while True:
            start = max(0, size - chunk)
            f.seek(start)
            lines = f.read(size - start).split(b'\n')
            whole = lines if start == 0 else lines[1:]  # the first piece may be a line's end
            for raw in reversed(whole):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue  # a line cut short: verify.py reports it; the chain goes on from before it
                if not isinstance(record, dict):
                    continue
                return link_of(record)
            if start == 0:
                return None
            chunk *= 4


def open_audit_file(path: str) -> IO[bytes]:
    """An audit log file for reading, compressed (logrotate's FILE.2.gz) or not."""
    f = open(path, 'rb')
    if f.read(2) == b'\x1f\x8b':
        f.close()
        return gzip.open(path, 'rb')
    f.seek(0)
    return f


def ends_cut(path: str) -> bool:
    """Whether the file's last line lacks its newline."""
    with open(path, 'rb') as f:
        if not f.seek(0, os.SEEK_END):
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b'\n'


class AuditLog:
    def __init__(self, path: Optional[str] = None):
        self.path = path
        self.counts = collections.Counter()
        self._lock = threading.Lock()  # held while writing
        self._queued_lock = threading.Lock()
        self._queued: List[Dict[str, Any]] = []  # records waiting for the writer
        # Told of each group of lines written, in chain order: (seq, line) each (evidence.py).
        self.on_written: Optional[Callable[[List[Tuple[int, bytes]]], None]] = None
        self._fd: Optional[int] = None
        self._state_fd: Optional[int] = None
        self._link = START
        self._end = 0  # where the file ended after the last line written (regular files only)
        self._recent: Deque[Tuple[int, bytes]] = collections.deque(maxlen=REPEAT_MAX_LINES)
        if path:
            # Appending only, never rewriting: earlier evidence is not touched. No buffer: each
            # line reaches the file when written, and a failed write leaves nothing behind.
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                self._open_chain()
            except BaseException:
                self.close()
                raise

    def _open_chain(self) -> None:
        st = os.fstat(self._fd)
        if not stat.S_ISREG(st.st_mode):
            return  # a pipe or a device: nothing to read back, and no state file beside /dev/full
        state = state_path(self.path)
        try:
            self._state_fd = os.open(state, os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as e:
            raise BadOption(
                f'--audit-log {self.path}: cannot write its chain state {state}: {e.strerror or e}'
            ) from None
        try:
            fcntl.flock(self._state_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(
                f'--audit-log {self.path} is being written by another watcher (it holds {state}); '
                'give each watcher its own audit log'
            ) from None
        try:
            last = last_link(self.path)
            cut = ends_cut(self.path)
        except OSError as e:
            raise BadOption(f'--audit-log {self.path}: cannot read it to go on with its chain: {e.strerror}') from None
        saved = None
        if last is None:
            try:
                saved = read_state(self.path)
            except ValueError as e:
                # Locking matters more than the chain: go on with a new one, a break that
                # --verify-audit shows where it begins.
                log.error('the audit chain state %s is damaged (%s); the chain begins anew', state, e)
        self._link = last or saved or START
        if cut:
            # A line cut short (the disk filled, or an older version was killed mid-line): end it,
            # or the next line would be glued to it. It stays, and --verify-audit reports it.
            log.warning('the audit log %s ends in a line cut short; it is left as it is', self.path)
            self._append(b'\n')
            self._recent.clear()
        self._end = os.lseek(self._fd, 0, os.SEEK_END)
        self._save_state()

    def record(self, outcome: Outcome) -> None:
        """Append the outcome's line; returns once it is in the file (or, the disk failing, in the
        log). Group commit: while one worker writes, the records of the others queue up, and the
        next writer takes them all in one write, so eight workers never wait in line for eight
        writes (the bench's burst did, at a fraction of the cluster's pace)."""
        entry: Dict[str, Any] = dict(
            time=dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ'), **outcome.record()
        )
        with self._queued_lock:
            self._queued.append(entry)
        with self._lock:
            with self._queued_lock:
                batch, self._queued = self._queued, []
            if batch:  # else another worker wrote this one with its own
                self._write(batch)

    def _write(self, batch: List[Dict[str, Any]]) -> None:
        for entry in batch:
            self.counts[entry['result']] += 1
        if self._fd is None:
            return
        link, lines = self._link, []
        for entry in batch:
            entry.update(seq=link.seq + 1, prev=link.hash)
            entry['hash'] = digest(entry)
            link = Link(entry['seq'], entry['hash'])
            lines.append((link.seq, (line_of(entry) + '\n').encode()))
        try:
            self._follow_rotation()
            self._append(b''.join(line for _, line in lines))
        except OSError as e:
            # A full or failing disk must not stop the locking, nor lose the evidence: the
            # records go to the log instead (and the next one tries the file again, taking
            # their place in the chain, which links only what the file holds).
            for _, line in lines:
                log.error(
                    'could not write the audit log %s (%s); the record: %s',
                    self.path,
                    e.strerror or e,
                    line.decode()[:-1],
                )
            return
        self._link = link
        self._save_state()
        if self.on_written is not None:
            self.on_written(lines)

    def _append(self, data: bytes) -> None:
        if self._state_fd is None:  # not a regular file: no offsets to keep
            while data:
                data = data[os.write(self._fd, data) :]
            return
        rest = data
        try:
            while rest:
                rest = rest[os.write(self._fd, rest) :]
        except OSError:
            if len(rest) < len(data):
                # Part of the line reached the disk before it filled: remove it, or the next line
                # would be glued to it.
                os.ftruncate(self._fd, os.lseek(self._fd, 0, os.SEEK_CUR) - (len(data) - len(rest)))
            raise
        # Where this write ended, not the file's size now: a truncation right after it must
        # still show at the next line as a file shorter than that.
        self._end = os.lseek(self._fd, 0, os.SEEK_CUR)
        now = time.time_ns()
        self._recent.append((now, data))
        while self._recent and self._recent[0][0] < now - REPEAT_WINDOW_S * 1_000_000_000:
            self._recent.popleft()

    def _follow_rotation(self) -> None:
        if self._state_fd is None:
            return
        held = os.fstat(self._fd)
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            named = None
        if named is None or (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino):
            # Rotated by renaming: the file held is the rotated one now. Go on in a new FILE;
            # the chain goes on from memory.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            os.close(self._fd)
            self._fd, self._end = fd, os.fstat(fd).st_size
            self._recent.clear()
            log.info('the audit log %s was rotated (renamed); writing on in a new %s', self.path, self.path)
        elif held.st_size < self._end:
            # Emptied in place (copytruncate): write again what may have missed the copy.
            emptied_at = held.st_ctime_ns  # the truncation's time (ctime: no tool sets it back)
            again = [data for written, data in self._recent if written >= emptied_at - REPEAT_WINDOW_S * 10**9]
            self._recent.clear()
            self._end = held.st_size
            if again:
                self._append(b''.join(again))
            log.info(
                'the audit log %s was rotated (copied and emptied); wrote again the %d lines written in the %d s '
                'before, which the copy may have missed',
                self.path,
                len(again),
                REPEAT_WINDOW_S,
            )

    def _save_state(self) -> None:
        if self._state_fd is None:
            return
        try:
            os.pwrite(self._state_fd, _state_text(self._link), 0)
        except OSError as e:
            log.error('could not write the audit chain state %s (%s)', state_path(self.path), e.strerror or e)

    def summary(self) -> str:
        with self._lock:
            return ', '.join(f'{n} {result}' for result, n in sorted(self.counts.items())) or 'nothing done'

    def close(self) -> None:
        if self._fd is not None:
            with self._lock:
                try:
                    self._follow_rotation()  # a copy taken since the last line must not lose it
                except OSError as e:
                    log.error('could not write the audit log %s (%s)', self.path, e.strerror or e)
            try:
                os.fsync(self._fd)
            except OSError as e:
                if e.errno != errno.EINVAL:  # a device or pipe, with nothing to sync
                    log.error('could not write the audit log %s to disk (%s)', self.path, e.strerror or e)
            os.close(self._fd)
            self._fd = None
        if self._state_fd is not None:
            os.close(self._state_fd)  # and with it the lock that keeps a second watcher off
            self._state_fd = None
