"""The aggregator processes of `serve --replicas N --federated ...`: `edgecloud aggregate` each,
on 127.0.0.1, behind HAProxy's `/federated` route, started again when one dies.

N of them on a shared PostgreSQL (`--federated-db postgresql://...`): they close each round once
between them (the store's round claim). On SQLite only one process may write, so one aggregator
runs whatever N is. Their versions go into the registry the MMS replicas are started from.
The database reaches them in $EDGECLOUD_AGGREGATOR_DATABASE, never on their command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aggregation.store import is_shared
from mms_handlers.ports import free_port

from ..commands.aggregate import DATABASE_ENV
from ..federation import FederatedOptions
from ..round_flags import settings_flags
from .replicas import ProcessSet, Replica, ReplicaPorts


def aggregator_count(replicas: int, database: str) -> int:
    return replicas if is_shared(database) else 1


def aggregator_set(options: FederatedOptions, database: str, replicas: int, registry: Path, root: Path, drain_seconds: float) -> ProcessSet:
    command = [
        sys.executable,
        "-m",
        "edgecloud",
        "aggregate",
        "--registry",
        str(Path(registry).resolve()),
        "--drain-seconds",
        str(drain_seconds),
        *settings_flags(options.settings),
    ]
    for name in options.models:
        command += ["--federated", name]
    members = []
    for i in range(aggregator_count(replicas, database)):
        port = free_port()
        members.append(
            Replica(
                i,
                ReplicaPorts(port, 0, 0),
                [*command, "--port", str(port)],
                Path(root) / f"aggregator-{i}",
                ready_path="/ready",
                runtime_dir_flag=False,
                env={DATABASE_ENV: database},  # not on the command line: a PostgreSQL URL's password would show in `ps`
            )
        )
    return ProcessSet(members, drain_seconds)
