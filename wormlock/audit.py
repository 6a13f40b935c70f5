"""Evidence for auditors: one JSON line per action on a file, appended and flushed as it happens."""

import collections
import datetime as dt
import json
import os
import threading

RESULTS_LOGGED = ('locked', 'already-locked', 'would-lock', 'failed', 'skipped-not-a-file', 'gone')


class AuditLog:
    def __init__(self, path=None):
        self.path = path
        self.counts = collections.Counter()
        self._lock = threading.Lock()
        self._file = None
        if path:
            # Appending only, never rewriting: earlier evidence is not touched.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._file = os.fdopen(fd, 'a', buffering=1)

    def record(self, outcome):
        line = dict(time=dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ'), **outcome.record())
        with self._lock:
            self.counts[outcome.result] += 1
            if self._file:
                self._file.write(json.dumps(line, sort_keys=True) + '\n')

    def summary(self):
        with self._lock:
            return ', '.join(f'{n} {result}' for result, n in sorted(self.counts.items())) or 'nothing done'

    def close(self):
        if self._file:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
