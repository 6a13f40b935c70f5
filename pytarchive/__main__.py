"""`python -m pytarchive ...` is the client, like `./pytarchive_client.py` and its symlink `pytarchive`."""

from common.errors import run_main
from pytarchive.client.cli import PROG, main

raise SystemExit(run_main(main, PROG))
