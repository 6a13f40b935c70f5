#!/usr/bin/env python3
"""Qumulo Lock Manager: list the SMB file handles open on a cluster and force-close them.

A Tk window by default; `--list` and `--close` for scripts (see --help and the README).
"""

import sys

from common.errors import run_main
from lockmanager.cli import main

if __name__ == '__main__':
    sys.exit(run_main(main))
