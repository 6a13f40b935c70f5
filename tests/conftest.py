import pytest

from pytarchive_rig import make_rig  # noqa: F401 - a fixture for the pytarchive end-to-end tests
from smtp_inbox import smtp_server  # noqa: F401 - a fixture: a real SMTP server on loopback
from simproc import SimCluster


@pytest.fixture
def sim(tmp_path):
    """A running emulated cluster whose file system is tmp_path/cluster."""
    cluster = SimCluster(tmp_path, keepalive=1.0)
    yield cluster
    cluster.stop()
