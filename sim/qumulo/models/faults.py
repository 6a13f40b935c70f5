"""Faults a test can inject: failing calls and added latency."""

import threading
import time

from ..errors import ApiError


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self.fail_count = 0
        self.fail_status = 503
        self.fail_retry_after = None
        self.latency_s = 0.0

    def fail_next(self, count, status, retry_after=None):
        if not 400 <= int(status) <= 599:
            raise ApiError(400, 'invalid_request_error', 'status must be 400-599')
        with self._lock:
            self.fail_count, self.fail_status = int(count), int(status)
            self.fail_retry_after = None if retry_after is None else str(retry_after)

    def set_latency(self, ms):
        self.latency_s = max(0.0, float(ms) / 1000)

    def before_call(self):
        """Called before every cluster API call: sleeps the latency, raises an injected failure."""
        if self.latency_s:
            time.sleep(self.latency_s)
        with self._lock:
            if self.fail_count <= 0:
                return
            self.fail_count -= 1
            status, retry_after = self.fail_status, self.fail_retry_after
        headers = {'Retry-After': retry_after} if retry_after is not None else None
        raise ApiError(status, 'sim_injected_error', f'Injected failure (HTTP {status})', headers)
