"""demo/lockmanager.py: the lock manager's step of `make demo`, against the emulated cluster."""

import pytest

from common.auth import connect
from common.config import load_cluster_config
from demo.lockmanager import demo_step


@pytest.mark.slow  # four runs of the tool
def test_the_demo_step_lists_closes_and_shows_a_refusal(sim, monkeypatch):
    monkeypatch.delenv('DISPLAY', raising=False)
    said = []
    demo_step(sim, connect(load_cluster_config(sim.write_config(sim.root.parent / 'demo.ini'))), said.append)
    text = '\n'.join(said)
    assert '/finance/Q3.xlsx           ' in text and 'bob    10.0.0.6' in text
    assert 'closed /finance/budget-2027.xlsx (alice from 10.0.0.5' in text
    assert 'user viewer lacks the privilege PRIVILEGE_SMB_FILE_HANDLE_WRITE' in text and '(exit 7)' in text
    assert '4 handles are still open' in text and 'no $DISPLAY here' in text
