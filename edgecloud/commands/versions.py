"""`edgecloud versions NAME`: the versions of a model in the registry, and which one its name serves.

`--serve N` moves latest.json to version N (a rollback or a roll forward) once N checks (every
file's size and SHA-256 against model.json); every serving replica watching the registry then
routes the name to N as it does for a new version (docs/versions.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CliError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "versions",
        help="list a model's versions; --serve N routes its name to version N (rollback)",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    parser.add_argument("name", help="model name (a folder of the registry)")
    parser.add_argument("--registry", type=Path, required=True, help="registry folder (the one serve watches)")
    parser.add_argument(
        "--serve", metavar="N", default=None, help="make version N the one the name serves: it must be complete and pass its SHA-256 check"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mms_handlers.names import name_problem
    from registry import Registry, RegistryError

    if problem := name_problem(args.name):
        raise CliError(problem)
    registry = Registry(args.registry)
    if not args.registry.is_dir() or not registry.model_dir(args.name).is_dir():
        raise CliError(f"no model {args.name!r} in the registry {args.registry}")
    try:
        if args.serve is not None:
            if not str(args.serve).isdigit():
                raise CliError(f"--serve {args.serve!r}: a version is a number")
            if int(args.serve) not in registry.versions(args.name):
                raise CliError(
                    f"--serve {args.serve}: {args.name} has no complete version {args.serve}; "
                    f"versions: {', '.join(map(str, registry.versions(args.name))) or 'none'}"
                )
            registry.set_latest(args.name, int(args.serve))
        latest = registry.latest(args.name)
        for version in registry.versions(args.name):
            print(f"{version}{'  ← latest.json (served)' if version == latest else ''}")
    except RegistryError as error:
        raise CliError(str(error)) from None
    return 0
