"""The command a report names so that a reader can run it again: the options that change the
figures, without the folders of the machine that produced them (`--work`, a build cache, and
`--out`, where the report went), which would otherwise print a /tmp path no reader has."""

from __future__ import annotations

import shlex

MACHINE_LOCAL = ("--work", "--out")


def rerun_command(module: str, argv: list[str], local: tuple[str, ...] = MACHINE_LOCAL) -> str:
    """`python -m MODULE ARGV...` with every `local` option (as `--opt VALUE` or `--opt=VALUE`) left out."""
    kept: list[str] = []
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
        elif arg in local:
            skip_value = True
        elif not arg.startswith(tuple(f"{option}=" for option in local)):
            kept.append(arg)
    return shlex.join(["python", "-m", module, *kept])
