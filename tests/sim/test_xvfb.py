"""The private X display (sim/xvfb.py): a fresh Xvfb screen while the block runs, $DISPLAY as it was after."""

import os
import subprocess
import sys

import pytest

from sim.xvfb import VirtualDisplay

pytestmark = pytest.mark.display


def test_display_is_set_inside_and_restored_after(monkeypatch):
    monkeypatch.setenv('DISPLAY', ':nowhere')
    with VirtualDisplay(size='320x200x24') as display:
        assert os.environ['DISPLAY'] == display.name and display.name.startswith(':')
        # A client on that display sees a screen of the size asked for.
        probe = subprocess.run(
            [
                sys.executable,
                '-c',
                'import tkinter; t = tkinter.Tk(); print(t.winfo_screenwidth(), t.winfo_screenheight())',
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (probe.returncode, probe.stdout) == (0, '320 200\n'), probe.stderr
        process = display.proc
    assert os.environ['DISPLAY'] == ':nowhere'
    assert process.poll() is not None  # Xvfb is gone with the block
