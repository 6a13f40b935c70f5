#!/usr/bin/env python3
"""Qumulo Lock Manager: list the SMB file handles open on a cluster and force-close them.

A Tk window by default; `--list` and `--close` for scripts (see --help and the README).
"""

import sys

from common.runtime import use_project_venv

use_project_venv(__file__)

from common.errors import run_main  # noqa: E402 - needs the dependencies use_project_venv found
from lockmanager.cli import PROG, main  # noqa: E402

if __name__ == '__main__':
    sys.exit(run_main(main, PROG))
