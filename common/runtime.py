"""Started by a Python that lacks the dependencies (`./qfs_filelock.py` runs the system's python3),
a tool moves over to the project's own .venv, or says in one line how to get one.

Imports only the standard library: it runs before anything else can be imported.
"""

import importlib.util
import os
import sys


def use_project_venv(script: str) -> None:
    if importlib.util.find_spec('qumulo') is not None:
        return
    venv = os.path.join(os.path.dirname(os.path.abspath(script)), '.venv')
    python = os.path.join(venv, 'bin', 'python')
    if os.path.exists(python) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
        os.execv(python, [python, os.path.abspath(script), *sys.argv[1:]])
    # The tools' one error line, `prog: error: message` (common.errors.error_line, which cannot be
    # imported here: common.errors needs the SDK). prog is the name the user typed, as argparse's
    # default: `pytarchive` for the link in /usr/local/bin, `qfs_filelock.py` for the script.
    prog = os.path.basename(sys.argv[0])
    sys.stderr.write(
        f'{prog}: error: the Qumulo SDK (qumulo-api) is not installed for this '
        'Python: run `make venv` in the project folder, or pip install -r requirements.txt\n'
    )
    sys.exit(1)
