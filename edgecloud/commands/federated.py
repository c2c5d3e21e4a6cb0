"""`edgecloud federated status MODEL_STORE/NAME`: rounds, accepted and refused updates, versions produced.

Reads the aggregator's SQLite file directly (`MODEL_STORE/federated.sqlite`, or `--db`), so it
works whether `serve` runs or not; SQLite's WAL lets it read while serve writes.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from ..errors import CliError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("federated", help="inspect federated averaging rounds",
                                   description="Inspect the rounds `serve --federated` keeps.")  # fmt: skip
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser(
        "status", help="rounds, updates, refusals and versions of one model",
        description="Show every round of MODEL_STORE/NAME: base version, clients and samples accepted, "
        "the version it produced, and the refused updates with their reasons.",
    )  # fmt: skip
    status.add_argument("target", metavar="MODEL_STORE/NAME", help="the serve model store and the model's name")
    status.add_argument("--db", type=Path, help="the rounds database (default MODEL_STORE/federated.sqlite)")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(run=run_status)


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "-"


def run_status(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from aggregation.store import SqliteStore

    from ..federation import DATABASE_FILE

    target = Path(args.target)
    name, database = target.name, args.db or target.parent / DATABASE_FILE
    if not Path(database).is_file():
        raise CliError(f"no rounds database at {database}: start `edgecloud serve --federated {name}` first, or give --db")
    store = SqliteStore(database)
    try:
        rounds, refusals = store.rounds(name), store.refusals(name)
    finally:
        store.close()
    if not rounds:
        raise CliError(f"{database} holds no rounds of model {name!r}")
    if args.json:
        print(json.dumps({"model": name, "rounds": [asdict(r) for r in rounds], "refusals": [asdict(r) for r in refusals]}, indent=2))
        return 0
    print(f"{'round':>5}  {'base':>4}  {'clients':>7}  {'samples':>7}  {'opened (UTC)':19}  {'closed (UTC)':19}  produced")
    for r in rounds:
        produced = r.new_version or ("open" if r.closed_at is None else "-")
        outcome = r.summary.get("outcome")
        note = f" ({r.summary.get('aggregation')})" if outcome == "published" and "aggregation" in r.summary else (f" ({outcome})" if outcome else "")
        print(f"{r.id:>5}  {r.base_version:>4}  {r.clients:>7}  {r.samples:>7}  {_when(r.opened_at):19}  {_when(r.closed_at):19}  {produced}{note}")
    reasons = Counter(refusal.reason.split(":")[0] for refusal in refusals)
    print(f"refused: {len(refusals)}" + (" (" + ", ".join(f"{code} {n}" for code, n in reasons.most_common()) + ")" if refusals else ""))
    for refusal in refusals[-10:]:
        print(f"  round {refusal.round_id}  {refusal.status}  {refusal.client}  {refusal.reason}")
    return 0
