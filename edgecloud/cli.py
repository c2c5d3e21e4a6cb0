"""`edgecloud` command line: one subcommand per stage, one clear line on error.

Exit codes: 0 ok, 2 bad usage or input, 1 failure.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .commands import COMMANDS
from .errors import CliError, exit_code_for


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgecloud",
        description="Serve one ONNX model in two places at once: Multi Model Server and the browser.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("edgecloud: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - every known failure becomes one line
        code = exit_code_for(error)
        if code is None:
            raise
        print(f"edgecloud {args.command}: error: {error}", file=sys.stderr)
        return code


__all__ = ["CliError", "build_parser", "main"]
