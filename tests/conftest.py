"""Fixtures every test folder may use: the emulated cluster."""

import pytest

from sim.qumulo.launcher import SimCluster


@pytest.fixture
def sim(tmp_path):
    """A running emulated cluster whose file system is tmp_path/cluster."""
    cluster = SimCluster(tmp_path, keepalive=1.0)
    yield cluster
    cluster.stop()
