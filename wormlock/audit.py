"""Evidence for auditors: one JSON line per action on a file, appended and flushed as it happens."""

import collections
import datetime as dt
import errno
import json
import logging
import os
import threading
from typing import Optional

from .locker import Outcome

log = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, path: Optional[str] = None):
        self.path = path
        self.counts = collections.Counter()
        self._lock = threading.Lock()
        self._fd: Optional[int] = None
        if path:
            # Appending only, never rewriting: earlier evidence is not touched. No buffer: each
            # line reaches the file when written, and a failed write leaves nothing behind.
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def record(self, outcome: Outcome) -> None:
        line = dict(time=dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ'), **outcome.record())
        text = json.dumps(line, sort_keys=True)
        with self._lock:
            self.counts[outcome.result] += 1
            if self._fd is None:
                return
            try:
                data = (text + '\n').encode()
                while data:
                    data = data[os.write(self._fd, data) :]
            except OSError as e:
                # A full or failing disk must not stop the locking, nor lose the evidence: the
                # record goes to the log instead (and the next one tries the file again).
                log.error('could not write the audit log %s (%s); the record: %s', self.path, e.strerror or e, text)

    def summary(self) -> str:
        with self._lock:
            return ', '.join(f'{n} {result}' for result, n in sorted(self.counts.items())) or 'nothing done'

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as e:
                if e.errno != errno.EINVAL:  # a device or pipe, with nothing to sync
                    log.error('could not write the audit log %s to disk (%s)', self.path, e.strerror or e)
            os.close(self._fd)
            self._fd = None
