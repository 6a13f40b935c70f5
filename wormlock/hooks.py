"""What the watcher tells the outside while it runs: the points the metrics (metrics.py) and the
systemd watchdog (health.py) listen at.

Every method here does nothing: a watcher built without them (the tests, a check before a daemon
detaches) runs as before. Each is called on the thread where the thing happens, so each must be
quick and must not raise; `folder` is the watched directory's cluster path.
"""

from typing import Any, Sequence


class Hooks:
    def stream_opened(self, folder: str) -> None:
        """A notify stream of the folder is open: the first, or one replacing a lost one."""

    def stream_alive(self, folder: str) -> None:
        """The folder's stream delivered a keepalive or a line of events."""

    def stream_ended(self, folder: str, silent: bool) -> None:
        """The folder's stream ended; `silent`: it was taken for dead, having sent nothing (not
        even a keepalive) for the silence threshold."""

    def stream_stopped(self, folder: str) -> None:
        """The folder is no longer watched (the watcher is stopping, or the folder was let go)."""

    def events(self, folder: str, count: int) -> None:
        """A line of `count` events arrived for the folder."""

    def outage_started(self) -> None:
        """The cluster stopped answering (the watcher logs it once and rides it out)."""

    def outage_ended(self) -> None:
        """The cluster answers again."""

    def scan_started(self, folder: str) -> None:
        """A catch-up scan of the folder began."""

    def scan_ended(self, folder: str, seconds: float, files: int) -> None:
        """A catch-up scan of the folder went through the whole tree."""

    def reported(self, outcome: Any) -> None:
        """A file's outcome was recorded (locker.Outcome: result as in the audit log)."""


class Fanout(Hooks):
    """Hands every call to each of `hooks` in turn."""

    def __init__(self, hooks: Sequence[Hooks]):
        self.hooks = tuple(hooks)

    def stream_opened(self, folder: str) -> None:
        for hook in self.hooks:
            hook.stream_opened(folder)

    def stream_alive(self, folder: str) -> None:
        for hook in self.hooks:
            hook.stream_alive(folder)

    def stream_ended(self, folder: str, silent: bool) -> None:
        for hook in self.hooks:
            hook.stream_ended(folder, silent)

    def stream_stopped(self, folder: str) -> None:
        for hook in self.hooks:
            hook.stream_stopped(folder)

    def events(self, folder: str, count: int) -> None:
        for hook in self.hooks:
            hook.events(folder, count)

    def outage_started(self) -> None:
        for hook in self.hooks:
            hook.outage_started()

    def outage_ended(self) -> None:
        for hook in self.hooks:
            hook.outage_ended()

    def scan_started(self, folder: str) -> None:
        for hook in self.hooks:
            hook.scan_started(folder)

    def scan_ended(self, folder: str, seconds: float, files: int) -> None:
        for hook in self.hooks:
            hook.scan_ended(folder, seconds, files)

    def reported(self, outcome: Any) -> None:
        for hook in self.hooks:
            hook.reported(outcome)
