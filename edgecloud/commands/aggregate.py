"""`edgecloud aggregate`: the federated aggregator as a process of its own, in the foreground.

It needs only the registry: it reads each model's current version there and writes the versions
its rounds produce there (the serving replicas watch it); no MMS, no model store. Rounds live in
SQLite by default (one process) or in PostgreSQL (`--database postgresql://...`), which several
replicas share behind a load balancer. The same round flags as `serve --federated`, the same
`/federated` API; SIGTERM drains (readiness fails first) before it stops.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import CliError, CommandFailed

DATABASE_ENV = "EDGECLOUD_AGGREGATOR_DATABASE"  # how a Secret hands over the URL without putting it on the command line
DEFAULT_PORT = 8090


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from ..round_flags import add_round_options

    parser = subparsers.add_parser(
        "aggregate",
        help="run the federated aggregator on its own (replicable on PostgreSQL)",
        description=(
            "Take parameter updates for each --federated model at /federated/NAME/updates, average every round "
            "into version N+1 written into --registry (latest.json moves last), and answer /live, /ready and "
            "/metrics. Several processes may share one --database postgresql://... behind a load balancer; "
            "exactly one of them closes each round. Stops on Ctrl-C or SIGTERM after draining."
        ),
    )
    parser.add_argument("--registry", type=Path, required=True, help="the registry folder (shared with the serving replicas)")
    parser.add_argument(
        "--federated",
        action="append",
        default=[],
        metavar="NAME",
        help="take parameter updates for model NAME (repeatable; its latest version needs a training entry)",
    )
    parser.add_argument(
        "--database",
        default=None,
        metavar="URL",
        help=f"postgresql://USER:PASSWORD@HOST:PORT/DB (replicas share it) or a SQLite file path; default "
        f"${DATABASE_ENV}, else federated.sqlite beside the registry folder (one process)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on ({DEFAULT_PORT}; 0 = any free port)")
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="an origin (scheme://host[:port]) whose pages may send updates (repeatable); none by default, '*' only if you mean any site",
    )
    parser.add_argument("--drain-seconds", type=float, default=3.0, help="on SIGTERM, keep answering this long after readiness fails (3)")
    add_round_options(parser.add_argument_group("round rules (the same as serve --federated; docs/federated.md)"))
    parser.set_defaults(run=run)


def default_database(registry: Path) -> str:
    return str(Path(registry).resolve().parent / "federated.sqlite")


def checked_origins(origins: list[str]) -> list[str]:
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query):
            raise CliError(f"--cors-origin {origin!r}: an origin is scheme://host[:port], e.g. https://shop.example")
    return origins


def run(args: argparse.Namespace) -> int:
    from aggregation.server import AggregatorServer
    from aggregation.store import StoreUnavailable, is_shared

    from ..federation import Aggregator, FederatedOptions, RegistryPublisher, load_model
    from ..round_flags import checked_federated_names, client_secret_from, round_settings_from
    from ..signals import until_signal

    names = checked_federated_names(args)
    if not names:
        raise CliError("aggregate needs at least one --federated NAME")
    if not Path(args.registry).is_dir():
        raise CliError(f"registry not found: {args.registry}")
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port}: not a TCP port")
    if args.drain_seconds < 0:
        raise CliError(f"--drain-seconds must be at least 0, got {args.drain_seconds}")
    origins = checked_origins(list(args.cors_origin))
    for name in names:
        load_model(Path(args.registry), name)  # CliError when it has no current version with a training entry
    options = FederatedOptions(models=names, settings=round_settings_from(args), client_secret=client_secret_from(args.client_secret))
    database = args.database or os.environ.get(DATABASE_ENV) or default_database(args.registry)
    logging.basicConfig(level=logging.INFO, format="aggregate: %(message)s", stream=sys.stderr)
    try:
        aggregator = Aggregator(options, Path(args.registry), RegistryPublisher(Path(args.registry)), database)
    except StoreUnavailable as error:
        raise CommandFailed(f"the round store cannot be reached: {error}") from None
    except ValueError as error:  # an unknown database form, or a schema newer than this aggregator
        raise CliError(f"--database: {error}") from None
    try:
        server = AggregatorServer(
            aggregator.service,
            host=args.host,
            port=args.port,
            cors_origins=origins,
            drain_seconds=args.drain_seconds,
            tokens=aggregator.tokens,
        ).start()
    except OSError as error:
        aggregator.stop()
        raise CommandFailed(f"cannot listen on {args.host}:{args.port}: {error}") from None
    where = "PostgreSQL (shared by replicas)" if is_shared(database) else f"SQLite {database} (one process)"
    print(f"Federated:   {server.url}/federated/<name>/updates   ({', '.join(names)})")
    print(f"Health:      {server.url}/live  {server.url}/ready  {server.url}/metrics")
    print(f"Rounds in:   {where}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        until_signal(lambda: True)
        print("aggregate: draining", file=sys.stderr, flush=True)
        server.drain()
    finally:
        server.stop()
        aggregator.stop()
    print("stopped", file=sys.stderr)
    return 0
