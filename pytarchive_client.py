#!/usr/bin/env python3
"""The pytarchive client: send a command to the pytarchive service and print its answer.

Installed as `/usr/local/bin/pytarchive -> /opt/pytarchive/pytarchive_client.py`. Python puts the
folder of the file a symlink points to first on sys.path, so `import pytarchive` finds the project;
use_project_venv is given that real path too, so the project's .venv is found through the link.
Run `./pytarchive_client.py --help`; the README explains every command and exit code.
"""

import os
import sys

from common.runtime import use_project_venv

use_project_venv(os.path.realpath(__file__))

from common.errors import run_main  # noqa: E402 - needs the dependencies use_project_venv found
from pytarchive.client.cli import PROG, main  # noqa: E402

if __name__ == '__main__':
    sys.exit(run_main(main, PROG))
