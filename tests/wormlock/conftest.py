"""Fixtures of qfs_filelock's tests (the emulator itself, `sim`, is in tests/conftest.py)."""

import pytest

from tests.wormlock.rig import STARTED


@pytest.fixture(autouse=True)
def no_watcher_left_running():
    """A watcher (rig.Watcher) that a failed test left running is killed after it: it would
    otherwise retry its vanished emulator for ever, as a watcher should."""
    yield
    while STARTED:
        watcher = STARTED.pop()
        if watcher.proc.poll() is None:
            watcher.kill()


@pytest.fixture
def drop(sim):
    """The directory /drop on the emulated cluster, made empty, as its backing directory."""
    path = sim.root / 'drop'
    path.mkdir()
    return path
