"""The lock manager's own failures, each carrying its exit status as a class attribute.

Raised where the failure is found; common.errors.run_main alone turns one into the user's line
(`qumulo_lock_manager.py: error: ...`) and the exit status. The window shows the same messages in
a dialog and its status bar.
"""

from common.errors import NOT_CONFIRMED, NOTHING_MATCHED, USAGE, ToolError


class NoWindow(ToolError):
    """The window cannot be opened here (no X display); --list and --close still work."""

    exit_code = USAGE


class NoTerminal(ToolError):
    """--close without --yes and no terminal to ask on: closing needs a yes said somewhere."""

    exit_code = USAGE


class NotConfirmed(ToolError):
    """The admin answered no (or nothing) at the prompt: nothing was closed."""

    exit_code = NOT_CONFIRMED


class NothingMatched(ToolError):
    """No open handle matched the patterns given to --list or --close."""

    exit_code = NOTHING_MATCHED
