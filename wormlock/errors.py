"""qfs_filelock's own failures, each carrying its exit status as a class attribute.

Raised where the failure is found; common.errors.run_main alone turns one into the user's line
(`qfs_filelock.py: error: ...`) and the exit status. A daemon, whose stderr goes nowhere, logs the
same message instead.
"""

from common.errors import AUTH, CONFIG, FAILURE, NOT_FOUND, PRIVILEGE, USAGE, ToolError


class BadOption(ToolError):
    """A file named on the command line (--audit-log, --pid-file, --log-file) cannot be used."""

    exit_code = USAGE


class PolicyError(ToolError):
    """The --policy file cannot be read, is not TOML, or names a folder or a rule wrongly."""

    exit_code = CONFIG


class AlreadyRunning(ToolError):
    """The --pid-file names a process that is still running: most likely a watcher already started."""

    exit_code = FAILURE


class DirectoryMissing(ToolError):
    """The directory to watch does not exist on the cluster, or no longer does."""

    exit_code = NOT_FOUND


class WatchRefused(ToolError):
    """The cluster will not watch the directory as asked: not a directory, recursive change
    notify disabled, or the notify request refused for a reason waiting cannot fix."""

    exit_code = FAILURE


class WatchForbidden(ToolError):
    """The cluster refused the notify request for a missing privilege (403)."""

    exit_code = PRIVILEGE


class ReportIncomplete(ToolError):
    """The report was written in full, but the account may not read some files' locks or list
    some directories: those rows are marked unreadable. The file's ACL refused, so the status is
    the one for a refused right, telling a script the report is not a complete account."""

    exit_code = PRIVILEGE


class CredentialsRejected(ToolError):
    """The cluster no longer accepts the watcher's session or access token, even after a new login."""

    exit_code = AUTH


class AuditChainBroken(ToolError):
    """--verify-audit found the audit log's hash chain broken: a line edited, removed, reordered or
    put in, a file missing between two, files out of order. The check itself failed, not a right
    or a file name: the status for any other failure."""

    exit_code = FAILURE
