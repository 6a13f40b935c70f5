"""The emulated cluster for tests: see sim/qumulo/launcher.py."""

from sim.qumulo.launcher import SIM_HOST, SimCluster  # noqa: F401
