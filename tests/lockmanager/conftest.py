"""Fixtures and helpers of the lock manager's tests: rows and listings made by hand, an emulator
with the sample SMB opens, a private X display, and waiting for the window's background calls."""

import time

import pytest

from lockmanager.jobs import BackgroundJobs
from lockmanager.model import HandleRow
from sim.qumulo.launcher import SimCluster
from sim.qumulo.samples import open_sample_handles
from sim.xvfb import VirtualDisplay


def row(path='/s/a.txt', user='alice', client='10.0.0.5', file_id='7', location=None, **extra):
    """A HandleRow with defaults for what a test does not care about."""
    values = dict(
        location=location or f'{path}:{user}',
        file_id=file_id,
        path=path,
        user=user,
        auth_id='500',
        client=client,
        access='read',
        share_modes=(),
        byte_range_locks=0,
    )
    values.update(extra)
    return HandleRow(**values)


def handle(file_id, owner, location, path=None, mask=('MS_ACCESS_FILE_READ_DATA',), byte_ranges=0):
    """One entry of the cluster's SMB handle listing."""
    info = {'owner': owner, 'access_mask': list(mask), 'location': location, 'num_byte_range_locks': byte_ranges}
    if path:
        info['path'] = path
    return {'file_number': file_id, 'handle_info': info}


def grant(file_id, address, *modes):
    """One entry of the cluster's share-mode or byte-range lock listing."""
    return {'file_id': file_id, 'owner_address': address, 'mode': list(modes)}


def wait_for_jobs(jobs: BackgroundJobs, timeout=30.0):
    """Deliver the background calls' results until none is pending, as the window's poll would."""
    deadline = time.monotonic() + timeout
    while jobs.busy:
        if time.monotonic() > deadline:
            raise TimeoutError(f'background calls still running after {timeout} s')
        jobs.deliver()
        time.sleep(0.005)


@pytest.fixture(scope='module')
def office(tmp_path_factory):
    """An emulator with the sample handles open, shared by a module's tests that only read."""
    cluster = SimCluster(tmp_path_factory.mktemp('office'), keepalive=1.0)
    open_sample_handles(cluster)
    cluster.config = cluster.write_config(cluster.root.parent / 'lock.ini')
    yield cluster
    cluster.stop()


@pytest.fixture
def opened(sim, tmp_path):
    """A test's own emulator with the sample handles open, for tests that close some."""
    open_sample_handles(sim)
    sim.config = sim.write_config(tmp_path / 'lock.ini')
    return sim


@pytest.fixture(scope='module')
def display():
    """A private Xvfb display for a module's window tests."""
    with VirtualDisplay() as screen:
        yield screen
