"""The cluster's time, as told by its HTTP Date header: retention is counted from it, not from
this host's clock, which may be wrong."""

import datetime as dt
import logging
import threading
from email.utils import parsedate_to_datetime
from typing import Optional

log = logging.getLogger(__name__)

SKEW_WARNING_S = 60
# The Date header has whole seconds: a smaller offset is rounding, not skew.
RESOLUTION_S = 2


class ClusterClock:
    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        self._warned = False
        self._lock = threading.Lock()

    def observe(self, date_header: Optional[str]) -> None:
        """Record the cluster's time from a reply's Date header (ignored when absent or bad)."""
        try:
            server = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            return
        if server.tzinfo is None:
            return
        offset = server - dt.datetime.now(dt.timezone.utc)
        if abs(offset.total_seconds()) < RESOLUTION_S:
            offset = dt.timedelta(0)
        with self._lock:
            self._offset = offset
            if abs(offset.total_seconds()) > SKEW_WARNING_S and not self._warned:
                self._warned = True
                log.warning(
                    "this host's clock is %+.0f s off the cluster's; retention is counted from the cluster's time",
                    offset.total_seconds(),
                )

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc) + self._offset
