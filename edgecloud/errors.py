"""Which exceptions the CLI turns into one line, and with which exit code."""

from __future__ import annotations


class CliError(Exception):
    """A usage or input problem found by the CLI itself (exit code 2)."""

    exit_code = 2


class CommandFailed(Exception):
    """A command ran and found a failure (exit code 1), e.g. a browser runtime that disagrees."""

    exit_code = 1


def exit_code_for(error: BaseException) -> int | None:
    """2 for the user's mistakes, 1 for failures, None for bugs (let the traceback show)."""
    from export.errors import ExportError
    from mms_handlers.archive import ArchiveError
    from mms_handlers.server import ServerError

    if isinstance(error, (CliError, CommandFailed, ExportError)):
        return error.exit_code
    if isinstance(error, ArchiveError):
        return 2
    if isinstance(error, ServerError):
        return 1
    if isinstance(error, OSError):
        return 1
    return None
