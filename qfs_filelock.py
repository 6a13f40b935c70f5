#!/usr/bin/env python3
"""QFS File Lock: watch directories on a Qumulo cluster and WORM-lock the files written there.

Run `./qfs_filelock.py --help`; the README explains every option and exit code.
"""

import sys

from common.runtime import use_project_venv

use_project_venv(__file__)

from common.errors import run_main  # noqa: E402 - needs the dependencies use_project_venv found
from wormlock.cli import PROG, main  # noqa: E402

if __name__ == '__main__':
    sys.exit(run_main(main, PROG))
