"""Injected faults (sim/qumulo/models/faults.py) and the /sim/ control surface's refusals."""

import time

import pytest

from tests.sim.qumulo.conftest import error_of


def test_fail_next_fails_exactly_that_many_calls(sim):
    rc = sim.client()
    sim.control('fail-next', {'count': 2, 'status': 503})
    for _ in range(2):
        assert error_of(lambda: rc.auth.who_am_i()).status_code == 503
    assert rc.auth.who_am_i()['name'] == 'admin'


def test_latency_is_added_to_each_call(sim):
    rc = sim.client()
    sim.control('latency', {'ms': 300})
    started = time.monotonic()
    rc.auth.who_am_i()
    assert time.monotonic() - started >= 0.3
    sim.control('latency', {'ms': 0})


def test_control_surface_rejects_bad_input(sim):
    with pytest.raises(Exception) as caught:
        sim.control('smb/open', {'path': '/x'})
    assert '400' in str(caught.value)
