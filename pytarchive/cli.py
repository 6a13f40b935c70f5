"""Entry-point wrapper shared by the client and the service: a failure is one line `PROG: message`."""

import sys
from typing import Callable, Optional

from common.errors import ToolError, one_line, run_main


def run(prog: str, main_fn: Callable[[], Optional[int]]) -> int:
    """Like common.errors.run_main, with the program's name in front of a ToolError's line."""

    def named() -> Optional[int]:
        try:
            return main_fn()
        except ToolError as exc:
            print(f'{prog}: {one_line(exc.message)}', file=sys.stderr)
            return exc.exit_code

    return run_main(named)
