"""`python -m pytarchive.service` starts the service, as deploy/pytarchive.service does."""

from common.errors import run_main
from pytarchive.service.server import PROG, main

raise SystemExit(run_main(main, PROG))
