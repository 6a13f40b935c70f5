"""The audit log's sealed copy on the cluster (--audit-cluster-dir): evidence as immutable as
the files it speaks of.

Every line the audit log writes is also kept for the cluster; every --audit-cluster-every
seconds (and at a stop) the lines gathered since the last seal are written to the cluster folder
as one file, PREFIX.FIRST-LAST.jsonl (the chain numbers of its first and last line, twelve
digits each), and that file is WORM-locked at once. The lines are the local log's, byte for byte,
so `--verify-audit` checks the sealed files in name order as one chain, just as rotated files.

A seal that fails (the cluster away, the account not allowed to write there) keeps its lines
and is tried again at the next turn; nothing is dropped. At a start the folder is listed: the
last sealed number tells which lines of the local log are not on the cluster yet, and those are
sealed first.
"""

import io
import json
import logging
import re
import threading
from typing import List, Optional, Tuple

from qumulo.lib.request import RequestError
from qumulo.rest import fs as rest_fs

from common.auth import Client, distinct_pages
from common.errors import describe
from .clock import ClusterClock
from .errors import DirectoryMissing, WatchRefused
from .locker import Policy, changes_needed, whole_second_after
from .retention import format_time
from .walk import DIRECTORY, PAGE_SIZE

log = logging.getLogger(__name__)

SEALED = re.compile(r'(?P<prefix>.+)\.(?P<first>[0-9]{12})-(?P<last>[0-9]{12})\.jsonl')
DEFAULT_EVERY_S = 600.0


class EvidenceError(Exception):
    """A seal that did not happen: its lines stay for the next turn."""


def sealed_name(prefix: str, first: int, last: int) -> str:
    return f'{prefix}.{first:012d}-{last:012d}.jsonl'


class ClusterCopy:
    def __init__(
        self, client: Client, directory: str, policy: Policy, prefix: str, clock: ClusterClock, every_s: float
    ):
        self.client = client
        self.directory = directory.rstrip('/') or '/'
        self.policy = policy
        self.prefix = prefix
        self.clock = clock
        self.every_s = every_s
        self.directory_id: Optional[str] = None
        self.sealed_to = 0  # the chain number of the last line on the cluster
        self._lock = threading.Lock()
        self._lines: List[Tuple[int, bytes]] = []  # (seq, line) not sealed yet
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._failing = False

    # --- start ---------------------------------------------------------------------------------
    def check(self) -> None:
        """The folder exists and can be listed; how far the chain is sealed already."""
        try:
            attrs = self.client.fs.get_file_attr(path=self.directory)
        except RequestError as e:
            if e.status_code == 404:
                raise DirectoryMissing(f'--audit-cluster-dir {self.directory} does not exist on the cluster') from None
            raise
        if attrs['type'] != DIRECTORY:
            raise WatchRefused(f'--audit-cluster-dir {self.directory} is not a directory')
        self.directory_id = attrs['id']
        for page in distinct_pages(
            self.client.fs.read_entire_directory(id_=self.directory_id, page_size=PAGE_SIZE), 'a directory listing'
        ):
            for entry in page['files']:
                found = SEALED.fullmatch(entry['name'])
                if found and found['prefix'] == self.prefix:
                    self.sealed_to = max(self.sealed_to, int(found['last']))

    def resume(self, local_log: str) -> None:
        """Gather the lines of the local log past the last sealed one."""
        with open(local_log, 'rb') as f:
            for raw in f:
                try:
                    seq = json.loads(raw).get('seq')
                except (ValueError, AttributeError):
                    continue  # a cut line or one from before the chain: --verify-audit names it
                if isinstance(seq, int) and seq > self.sealed_to:
                    self._lines.append((seq, raw if raw.endswith(b'\n') else raw + b'\n'))
        if self._lines and self._lines[0][0] != self.sealed_to + 1 and self.sealed_to:
            log.warning(
                'audit records %d to %d are in no sealed file on the cluster and no longer in %s '
                '(rotated away while no watcher ran); seal the rotated file by hand',
                self.sealed_to + 1,
                self._lines[0][0] - 1,
                local_log,
            )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name='audit-seal', daemon=True)
        self._thread.start()

    # --- the audit log's side ------------------------------------------------------------------
    def add(self, lines: List[Tuple[int, bytes]]) -> None:
        """Lines the audit log has just written, in chain order."""
        with self._lock:
            self._lines.extend(lines)

    # --- sealing -------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.seal()

    def seal(self) -> bool:
        """Seal what is gathered; False when it failed (and is kept for the next turn)."""
        with self._lock:
            lines = list(self._lines)
        if not lines:
            return True
        first, last = lines[0][0], lines[-1][0]
        try:
            self._write_and_lock(sealed_name(self.prefix, first, last), b''.join(line for _, line in lines))
        except Exception as e:  # noqa: BLE001 - the evidence stays here until the cluster takes it
            reason = e.args[0] if isinstance(e, EvidenceError) else describe(e)
            if not self._failing:
                log.error(
                    'could not seal audit records %d to %d in %s on the cluster (%s); kept, and tried again in %g s',
                    first,
                    last,
                    self.directory,
                    reason,
                    self.every_s,
                )
            self._failing = True
            return False
        with self._lock:
            del self._lines[: len(lines)]
        self.sealed_to = last
        if self._failing:
            log.warning('the audit records are sealed on the cluster again')
        self._failing = False
        log.info(
            'sealed audit records %d to %d in %s/%s', first, last, self.directory, sealed_name(self.prefix, first, last)
        )
        return True

    def _write_and_lock(self, name: str, data: bytes) -> None:
        try:
            file_id = self.client.fs.create_file(name=name, dir_id=self.directory_id)['id']
        except RequestError as e:
            if e.error_class != 'fs_entry_exists_error':
                raise
            # A seal cut short before: the file is there. Locked with these very bytes, it is done;
            # not locked yet, it is written again.
            attrs = rest_fs.get_file_attr(
                self.client.conninfo, self.client.credentials, path=f'{self.directory}/{name}', retrieve_file_lock=True
            ).data
            lock = attrs.get('lock') or {}
            if lock.get('retention_period') or lock.get('legal_hold'):
                if int(attrs['size']) != len(data):
                    raise EvidenceError(f'{name} is there already, locked, and holds other records')
                return
            file_id = attrs['id']
        self.client.fs.write_file(data_file=io.BytesIO(data), id_=file_id)
        now = self.clock.now()
        changes = {}
        if self.policy.retention is not None:
            changes['retention_period'] = format_time(whole_second_after(self.policy.retention.target(now)))
        if self.policy.legal_hold:
            changes['legal_hold'] = True
        lock = rest_fs.modify_file_lock(self.client.conninfo, self.client.credentials, id_=file_id, **changes).data[
            'lock'
        ]
        if changes_needed(self.policy, lock, now, now):
            raise EvidenceError(f'the cluster reports the lock of {name} as {lock}, not what was set')

    def close(self) -> None:
        """Stop the turns and seal what is left, once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.seal()
