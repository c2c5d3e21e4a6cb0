"""`edgecloud federated status MODEL_STORE/NAME`: rounds, accepted and refused updates, versions produced.
`edgecloud federated token`: a client token for an aggregator started with `--client-secret FILE`.

Status reads the round store the aggregator writes, opened by the same factory as `edgecloud
aggregate` (aggregation.store.open_store): `--database` (a SQLite file or postgresql://...), else
$EDGECLOUD_AGGREGATOR_DATABASE as the aggregator reads it, else `serve`'s MODEL_STORE/federated.sqlite.
It works whether an aggregator runs or not; SQLite's WAL and PostgreSQL's transactions let it read
while one writes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from ..errors import CliError, CommandFailed


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "federated",
        help="inspect federated averaging rounds; issue client tokens",
        description="Inspect the rounds `serve --federated` keeps; issue client tokens.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser(
        "status",
        help="rounds, updates, refusals and versions of one model",
        description="Show every round of MODEL_STORE/NAME: base version, clients and samples accepted, "
        "the version it produced, and the refused updates with their reasons.",
    )
    status.add_argument("target", metavar="MODEL_STORE/NAME", help="the serve model store and the model's name")
    status.add_argument(
        "--database",
        "--db",
        metavar="URL",
        help="the round store: a SQLite file or postgresql://USER:PASSWORD@HOST:PORT/DB, as `edgecloud aggregate --database` "
        "takes it (default $EDGECLOUD_AGGREGATOR_DATABASE, else MODEL_STORE/federated.sqlite)",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(run=run_status)
    token = actions.add_parser(
        "token",
        help="issue a client token (aggregators started with --client-secret take only these)",
        description="Print a token letting one client id send updates until it expires: HMAC-SHA256 over the "
        "client id and the expiry with the secret in FILE. Give --client ID, or --login NAME for a stable "
        "pseudonymous client id derived from a login (the aggregator never sees the login).",
    )
    token.add_argument("--client-secret", type=Path, required=True, metavar="FILE", help="the secret the aggregator was started with")
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--client", metavar="ID", help="the client id the token is for (8-128 letters, digits, '-', '_')")
    who.add_argument("--login", metavar="NAME", help="derive the client id from this login name")
    token.add_argument(
        "--expires",
        required=True,
        metavar="WHEN",
        help="a duration from now (90m, 12h, 30d, or seconds) or a UTC date, e.g. 2027-01-31T00:00:00",
    )
    token.set_defaults(run=run_token)


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "-"


def run_status(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from aggregation.store import StoreUnavailable, is_shared, open_store

    from ..federation import DATABASE_FILE
    from .aggregate import DATABASE_ENV

    target = Path(args.target)
    name = target.name
    database = args.database or os.environ.get(DATABASE_ENV) or str(target.parent / DATABASE_FILE)
    sqlite_file = None if is_shared(database) else database.removeprefix("sqlite://")
    if sqlite_file is not None and "://" not in sqlite_file and not Path(sqlite_file).is_file():
        raise CliError(f"no rounds database at {sqlite_file}: start `edgecloud serve --federated {name}` first, or give --database")
    try:
        store = open_store(database)
    except StoreUnavailable as error:
        raise CommandFailed(f"the round store cannot be reached: {error}") from None
    except ValueError as error:  # an unknown database form, or a schema newer than this command
        raise CliError(f"--database: {error}") from None
    try:
        rounds, refusals = store.rounds(name), store.refusals(name)
    finally:
        store.close()
    if not rounds:
        raise CliError(f"{'the PostgreSQL store' if sqlite_file is None else sqlite_file} holds no rounds of model {name!r}")
    if args.json:
        print(json.dumps({"model": name, "rounds": [asdict(r) for r in rounds], "refusals": [asdict(r) for r in refusals]}, indent=2))
        return 0
    print(f"{'round':>5}  {'base':>4}  {'clients':>7}  {'samples':>7}  {'opened (UTC)':19}  {'closed (UTC)':19}  produced")
    for r in rounds:
        produced = r.new_version or ("open" if r.closed_at is None else "-")
        outcome = r.summary.get("outcome")
        note = (
            f" ({r.summary.get('aggregation')})"
            if outcome == "published" and "aggregation" in r.summary
            else (f" ({outcome})" if outcome else "")
        )
        print(
            f"{r.id:>5}  {r.base_version:>4}  {r.clients:>7}  {r.samples:>7}  {_when(r.opened_at):19}  {_when(r.closed_at):19}  {produced}{note}"
        )
    reasons = Counter(refusal.reason.split(":")[0] for refusal in refusals)
    print(f"refused: {len(refusals)}" + (" (" + ", ".join(f"{code} {n}" for code, n in reasons.most_common()) + ")" if refusals else ""))
    for refusal in refusals[-10:]:
        print(f"  round {refusal.round_id}  {refusal.status}  {refusal.client}  {refusal.reason}")
    return 0


DURATION = re.compile(r"(\d+)([smhd]?)")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def expiry(value: str, now: float) -> int:
    """--expires WHEN → Unix seconds; CliError unless it is a duration or a date in the future."""
    if match := DURATION.fullmatch(value.strip()):
        when = now + int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise CliError(f"--expires {value!r}: give a duration (90m, 12h, 30d) or a date such as 2027-01-31T00:00:00") from None
        when = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    if when <= now:
        raise CliError(f"--expires {value!r}: that is not in the future")
    return int(when)


def run_token(args: argparse.Namespace) -> int:
    from aggregation.tokens import issue, pseudonym, read_secret

    try:
        secret = read_secret(args.client_secret)
    except ValueError as error:
        raise CliError(f"--client-secret: {error}") from None
    expires = expiry(args.expires, time.time())
    client = pseudonym(secret, args.login) if args.login is not None else args.client
    try:
        token = issue(secret, client, expires)
    except ValueError as error:
        raise CliError(f"--client: {error}") from None
    print(token)
    print(f"token for client {client}, valid until {_when(expires)} UTC", file=sys.stderr)
    return 0
