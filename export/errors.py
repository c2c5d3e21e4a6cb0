"""Errors raised by the export side, split by who is at fault (exit code 2 vs 1)."""


class ExportError(Exception):
    """An export failed for a reason the caller can act on; the message is one line."""

    exit_code = 1


class BadInputError(ExportError):
    """The user's file, sample or option is wrong (CLI exit code 2)."""

    exit_code = 2


class ParityError(ExportError):
    """The ONNX graph does not reproduce the source framework within tolerance."""

    exit_code = 1


class UnsupportedModelError(BadInputError):
    """The model uses a layer or operator its ONNX converter cannot translate (exit code 2)."""


def one_line(error: BaseException) -> str:
    """The first line of an exception's message that says something (framework errors span pages).

    MXNet puts a C++ stack ("Traceback ...", "File ...") before its reason: skipped.
    """
    for line in str(error).strip().splitlines():
        line = line.strip()
        if line and not line.startswith(("Traceback (most recent call last)", "File ")):
            return line
    return type(error).__name__
