#!/usr/bin/env python3
"""QFS File Lock: watch directories on a Qumulo cluster and WORM-lock the files written there.

Run `./qfs_filelock.py --help`; the README explains every option and exit code.
"""

import sys

from common.errors import run_main
from wormlock.cli import main

if __name__ == '__main__':
    sys.exit(run_main(main))
