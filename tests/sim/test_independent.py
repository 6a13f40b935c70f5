"""The stand-ins depend on nothing they stand in for: importing every module under sim/ loads no
tool package (a stand-in that borrowed a tool's code would test that code against itself)."""

import pathlib
import subprocess
import sys

PROJECT = pathlib.Path(__file__).resolve().parents[2]
TOOL_PACKAGES = ('wormlock', 'lockmanager', 'pytarchive', 'demo', 'tests', 'bench')


def sim_modules():
    for path in sorted((PROJECT / 'sim').rglob('*.py')):
        parts = path.relative_to(PROJECT).with_suffix('').parts
        yield '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def test_sim_modules_import_no_tool():
    modules = list(sim_modules())
    assert 'sim.qumulo.server' in modules and 'sim.tapelib.scsi.model' in modules and 'sim.xvfb' in modules
    # A fresh interpreter: this one has the tools loaded already, by the other tests.
    script = (
        'import importlib, sys\n'
        f'for name in {modules!r}:\n'
        '    importlib.import_module(name)\n'
        f'print(sorted(m for m in sys.modules if m.split(".")[0] in {TOOL_PACKAGES!r}))\n'
    )
    done = subprocess.run([sys.executable, '-c', script], cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '[]\n'
