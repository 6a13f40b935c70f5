"""`--verify-audit FILE...`: check the audit log's hash chain (audit.py) across its files, oldest
first, as logrotate left them (FILE.2.gz, FILE.1, FILE).

Each line's hash must match its content, and each line must follow the one before it: its `seq`
one more, its `prev` the previous line's `hash`, across the files too. The first break ends the
check with one line naming the file, the line and what is wrong: an edited line, a line removed,
lines reordered, a file missing between two, files out of order, a chain begun afresh. Lines of
an older version, without a hash, are counted as unchained when they come before the first chained
line (the chain begins after them, from GENESIS); after it, a line without a hash is a break.

What a chain cannot show by itself is lines cut off its end; the state file FILE.chain next to the
live log holds the last record written, so when the last file given has one, its end is checked
against it. A file may begin with lines that repeat the end of the file before it, verbatim:
the watcher writes those again after a copytruncate rotation (audit.py), and they are counted
as repeated, not as records.
"""

import collections
import gzip
import json
import os
import zlib
from dataclasses import dataclass
from typing import IO, Any, Deque, Dict, Iterator, Optional, Sequence

from .audit import (
    GENESIS,
    REPEAT_MAX_LINES,
    STATE_SUFFIX,
    Link,
    digest,
    is_hash,
    line_of,
    link_of,
    open_audit_file,
    read_state,
    state_path,
)
from .errors import AuditChainBroken, BadOption


@dataclass
class Checked:
    """One file checked: what it holds."""

    path: str
    records: int = 0  # its lines, repeats left out
    unchained: int = 0  # of them, written before the chain began
    repeated: int = 0  # lines repeating the end of the file before, written again after its rotation
    first: Optional[int] = None  # the seq of its first and last chained record
    last: Optional[int] = None

    def describe(self) -> str:
        notes = []
        if self.first is not None:
            notes.append(f'chain records {self.first} to {self.last}')
        if self.unchained:
            notes.append(f'{self.unchained} unchained, written before the chain began')
        if self.repeated:
            notes.append(f'{self.repeated} repeated from the file before, written again after its rotation')
        return f'{self.path}: ok: {self.records} record{"" if self.records == 1 else "s"}' + (
            f' ({"; ".join(notes)})' if notes else ''
        )


def verify(paths: Sequence[str]) -> Iterator[Checked]:
    """Check the files in order, yielding each one once it is checked. Raises BadOption for a file
    that cannot be read (before anything is checked), AuditChainBroken at the first break."""
    seen = {}
    for path in paths:
        try:
            with open(path, 'rb'):
                st = os.stat(path)
        except OSError as e:
            raise BadOption(f'--verify-audit {path}: cannot read it: {e.strerror or e}') from None
        if (st.st_dev, st.st_ino) in seen:
            raise BadOption(f'--verify-audit names {seen[(st.st_dev, st.st_ino)]} twice (as {path})')
        seen[(st.st_dev, st.st_ino)] = path
    try:
        # Read before the files, so that lines the watcher writes meanwhile leave it behind them.
        state = read_state(paths[-1]) if paths else None
    except OSError as e:
        raise BadOption(f'{state_path(paths[-1])}: cannot read it: {e.strerror or e}') from None
    except ValueError as e:
        raise AuditChainBroken(f'{state_path(paths[-1])} is not a chain state: {e}') from None
    chain = _Chain()
    for n, path in enumerate(paths):
        checked = chain.check_file(path)
        if n == len(paths) - 1:
            chain.check_end(path, state)
        yield checked


class _Chain:
    """The chain as read so far, across files."""

    def __init__(self) -> None:
        self.link: Optional[Link] = None  # the last chained record read
        self.link_path: Optional[str] = None  # the file it is in
        self.unchained_seen = False
        self.files = 0
        # The last records' hashes by seq, for the repeats a file may begin with.
        self.recent: Dict[int, str] = {}
        self.recent_order: Deque[int] = collections.deque()

    def check_file(self, path: str) -> Checked:
        checked = Checked(path)
        leading = True  # still at the file's beginning, where repeats may be
        first_chained = True
        try:
            with open_audit_file(path) as f:
                for number, raw in enumerate(f, 1):
                    record = self._record(path, number, raw)
                    link = link_of(record)
                    if link is None:
                        if self.link is not None:
                            raise self._broken(
                                path,
                                number,
                                'carries no hash, yet chained records come before it: its hash was removed, '
                                'or the line put in',
                            )
                        self.unchained_seen = True
                        checked.records += 1
                        checked.unchained += 1
                        leading = False
                        continue
                    if leading and self._repeats(link):
                        checked.repeated += 1
                        continue
                    leading = False
                    self._follow(path, number, record, link, first_chained and self.files > 0, f)
                    first_chained = False
                    checked.records += 1
                    checked.first = checked.first or link.seq
                    checked.last = link.seq
                    self._remember(path, link)
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise AuditChainBroken(f'{path}: cannot be read to its end as gzip ({e}): damaged or cut short') from None
        except OSError as e:
            raise BadOption(f'--verify-audit {path}: cannot read it: {e.strerror or e}') from None
        self.files += 1
        return checked

    def check_end(self, path: str, state: Optional[Link]) -> None:
        """The end of the chain against the state file the watcher keeps next to the live log."""
        if state is None or not state.seq or self.link is None:
            return
        where = state_path(path)
        if state.seq > self.link.seq:
            missing = _records(self.link.seq + 1, state.seq)
            raise AuditChainBroken(
                f'{path}: the chain ends at record {self.link.seq}, but {where} says record {state.seq} was '
                f'written: {missing} removed from the end'
            )
        if state.seq == self.link.seq and state.hash != self.link.hash:
            raise AuditChainBroken(
                f'{self.link_path}: its last record ({self.link.seq}) is not the one {where} names: rewritten'
            )

    def _record(self, path: str, number: int, raw: bytes) -> Dict[str, Any]:
        if not raw.endswith(b'\n'):
            raise self._broken(path, number, 'cut short (no end of line): the disk filled, or it was being written')
        try:
            text = raw[:-1].decode('utf-8')
            record = json.loads(text)
        except ValueError:
            record = text = None
        if not isinstance(record, dict):
            raise self._broken(path, number, 'not a record (not a JSON object): edited or damaged')
        if 'hash' not in record and 'prev' not in record and 'seq' not in record:
            return record  # written before the chain began
        if link_of(record) is None or not is_hash(record.get('prev')):
            raise self._broken(path, number, 'not a chained record: its seq, prev or hash is missing or malformed')
        if digest(record) != record['hash']:
            raise self._broken(path, number, f'edited: record {record["seq"]} does not match its hash')
        if line_of(record) != text:
            raise self._broken(
                path, number, f'edited: record {record["seq"]} is not written as the tool writes it (its hash matches)'
            )
        return record

    def _repeats(self, link: Link) -> bool:
        """Whether the line repeats one of the last records read, as written after a rotation."""
        return self.files > 0 and self.link is not None and self.recent.get(link.seq) == link.hash

    def _follow(
        self, path: str, number: int, record: Dict[str, Any], link: Link, new_file: bool, rest: IO[bytes]
    ) -> None:
        """Whether the record follows the last one read; AuditChainBroken says why not."""
        prev = record['prev']
        if (link.seq == 1) != (prev == GENESIS):
            raise self._broken(
                path,
                number,
                'record 1 does not begin from the genesis value'
                if link.seq == 1
                else f'record {link.seq} has the genesis value as prev: not a chain the tool writes',
            )
        last = self.link
        if last is None:
            if self.unchained_seen and link.seq != 1:
                raise self._broken(
                    path,
                    number,
                    f'record {link.seq} of a chain follows lines without a hash: the hashes of the records '
                    'before it were removed, or older lines put in front of it',
                )
            return
        if link.seq == last.seq + 1 and prev == last.hash:
            return
        where = f'{path} line {number} (record {link.seq})'
        before = f'{self.link_path}, which ends at record {last.seq}' if new_file else f'record {last.seq}'
        if link.seq == 1:
            raise AuditChainBroken(
                f'{where} begins a new chain after {before}: '
                + ('the files are out of order (give them oldest first), or ' if new_file else '')
                + f'the log was begun afresh, losing its link to what came before (its {STATE_SUFFIX} state file lost?)'
            )
        if link.seq > last.seq + 1:
            later = _find(rest, last.seq + 1)
            if later is not None:
                raise AuditChainBroken(
                    f'{where} comes where record {last.seq + 1} should: lines reordered (record {last.seq + 1} '
                    f'is at line {number + later})'
                )
            missing = _records(last.seq + 1, link.seq - 1)
            if new_file:
                raise AuditChainBroken(
                    f'{where} does not follow {before}: {missing} missing: a rotated file between them left out '
                    'of the list, or lines removed'
                )
            raise AuditChainBroken(f'{where} follows record {last.seq}: {missing} removed')
        if link.seq <= last.seq:
            if new_file:
                raise AuditChainBroken(
                    f'{path} begins at record {link.seq}, but {before}: the files are out of order (give them '
                    'oldest first)'
                )
            raise AuditChainBroken(f'{where} comes after record {last.seq}: lines reordered or copied')
        if new_file:
            raise AuditChainBroken(
                f'{where} does not follow the last record of {self.link_path}: that line was rewritten, or the '
                'files are of different chains'
            )
        raise AuditChainBroken(
            f'{where} does not follow the line before it (record {last.seq}): that line was rewritten '
            '(its hash made anew) or replaced'
        )

    def _remember(self, path: str, link: Link) -> None:
        self.link, self.link_path = link, path
        self.recent[link.seq] = link.hash
        self.recent_order.append(link.seq)
        while len(self.recent_order) > REPEAT_MAX_LINES:
            self.recent.pop(self.recent_order.popleft(), None)

    @staticmethod
    def _broken(path: str, number: int, what: str) -> AuditChainBroken:
        return AuditChainBroken(f'{path} line {number}: {what}')


def _find(rest: IO[bytes], seq: int) -> Optional[int]:
    """How many lines further on the file holds record `seq` (None: not in the rest of it)."""
    for distance, raw in enumerate(rest, 1):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get('seq') == seq:
            return distance
    return None


def _records(first: int, last: int) -> str:
    return f'record {first} is' if first == last else f'records {first} to {last} are'
