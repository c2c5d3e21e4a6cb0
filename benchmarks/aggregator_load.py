"""The aggregator under load and faults (issue 24 item 7): `python -m benchmarks.aggregator_load`.

A Python load client: `--concurrency` threads, each keeping a keep-alive connection, send updates
from `--clients` distinct client ids (each sends once per version), of the demo forecaster's real
head (its model.json `training.parameters`: 32×25 + 25 floats, about 16 kB of JSON), to real
`edgecloud aggregate` processes. Two runs: 2 replicas on a PostgreSQL cluster started here
(tests/postgres.py), with one replica SIGKILLed (and started again, as a ReplicaSet would) and
PostgreSQL restarted during the run; then 1 process on SQLite, no faults. A request that fails
goes to the next replica after a short back-off, as a load balancer would retry it.

Reported per run: accepted updates per second, p50/p99 latency of the accepted ones, rounds
closed, and every answer that was not 200 by kind. Then the check, from the database and the
registry: every update that got a 200 is a row of the round its answer named; each round's version
equals base + Σ nᵢΔᵢ / Σ nᵢ over that round's rows (each delta regenerated from its client's seed,
so an update counted twice or missed would show); the only non-200 answers are retryable ones
(503 store-unavailable, 409 round-closing / stale-base, a refused connection). Writes
`results/AGGREGATOR_LOAD.md` and `aggregator_load.json`. Needs the demo forecaster's registry
(`make bench` builds it into .edgecloud/bench/demo), or `--registry` with a trainable model.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.federated_version import trainable_parameters
from registry import Registry

from .load_client import percentile

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REGISTRY = REPO / ".edgecloud" / "bench" / "demo" / "registry"
RETRYABLE = {
    "store-unavailable",
    "round-closing",
    "stale-base",
    "ConnectionRefusedError",
    "RemoteDisconnected",
    "ConnectionResetError",
    "BrokenPipeError",
    "TimeoutError",
    "CannotSendRequest",
    "BadStatusLine",
}


@dataclass(frozen=True)
class Sent:
    client: str
    base: str
    samples: int
    outcome: str  # "200" or the refusal's code or the exception's name
    round: int | None
    seconds: float


@dataclass
class RunResult:
    name: str
    replicas: int
    database: str
    seconds: float
    clients: int
    concurrency: int
    accepted: int = 0
    accepted_per_second: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    rounds_closed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)


def delta_of(client: str, base: str, specs: list[dict]) -> tuple[int, dict[str, np.ndarray]]:
    """The update a client sends on a base: samples and delta, reproducible from the pair."""
    seed = zlib.crc32(f"{client}/{base}".encode())
    rng = np.random.default_rng(seed)
    return 1 + seed % 50, {s["name"]: rng.normal(0, 0.01, tuple(s["shape"])) for s in specs}


def body_of(client: str, base: str, specs: list[dict]) -> tuple[int, bytes]:
    samples, delta = delta_of(client, base, specs)
    return samples, json.dumps(
        {
            "client": client,
            "base_version": base,
            "samples": samples,
            "delta": {n: {"shape": list(v.shape), "data": v.ravel().tolist()} for n, v in delta.items()},
        }
    ).encode()


class Aggregators:
    """`edgecloud aggregate` processes on fixed ports, killable and restartable."""

    def __init__(self, count: int, registry: Path, model: str, database: str, min_clients: int, log: Path) -> None:
        from mms_handlers.ports import free_port

        self.ports = [free_port() for _ in range(count)]
        self.command = [
            sys.executable,
            "-m",
            "edgecloud",
            "aggregate",
            "--registry",
            str(registry),
            "--federated",
            model,
            "--database",
            database,
            "--min-clients",
            str(min_clients),
            "--drain-seconds",
            "0",
        ]
        self.log = log
        self.processes: list[subprocess.Popen | None] = [None] * count

    def start(self, index: int) -> None:
        with open(self.log, "a") as log:
            process = subprocess.Popen(
                [*self.command, "--port", str(self.ports[index])], cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True
            )
        for line in process.stdout:
            if line.startswith("Press Ctrl-C"):
                break
        else:
            raise RuntimeError(f"aggregate did not start; see {self.log}")
        self.processes[index] = process

    def kill(self, index: int) -> None:
        process = self.processes[index]
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


class LoadClient:
    """Threads sending each client's update once per version, to the replicas in turn."""

    def __init__(self, ports: list[int], model: str, specs: list[dict], clients: int, concurrency: int) -> None:
        self.ports, self.model, self.specs = ports, model, specs
        self.clients = [f"load-client-{i:05d}" for i in range(clients)]
        self.base = "1"
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._counter = itertools.count()
        self._threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(concurrency)]

    def _describe(self, port: int) -> None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", f"/federated/{self.model}")
            answer = json.loads(connection.getresponse().read())
            connection.close()
            with self._lock:
                if int(answer["base_version"]) > int(self.base):
                    self.base = answer["base_version"]
        except Exception:  # noqa: BLE001 - the next request tries again
            pass

    def _loop(self, thread: int) -> None:
        connections: dict[int, http.client.HTTPConnection] = {}
        while not self._stop.is_set():
            index = next(self._counter)
            port = self.ports[index % len(self.ports)]
            client, base = self.clients[index % len(self.clients)], self.base
            samples, body = body_of(client, base, self.specs)
            started, round_id = time.monotonic(), None
            try:
                connection = connections.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connections[port] = connection
                connection.request("POST", f"/federated/{self.model}/updates", body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = json.loads(response.read())
                if response.getheader("connection", "").lower() == "close":
                    connections.pop(port).close()
                outcome = "200" if response.status == 200 else answer.get("error", str(response.status))
                round_id = answer.get("round") if response.status == 200 else None
            except Exception as error:  # noqa: BLE001 - every failure is an outcome to report
                outcome = type(error).__name__
                if port in connections:
                    connections.pop(port).close()
            with self._lock:
                self.sent.append(Sent(client, base, samples, outcome, round_id, time.monotonic() - started))
            if outcome in ("stale-base", "round-closing"):
                self._describe(port)
                self._stop.wait(0.05)
            elif outcome != "200":
                self._stop.wait(0.2)  # back off, then the next replica
        for connection in connections.values():
            connection.close()

    def run(self, seconds: float, faults: list[tuple[float, Any]]) -> None:
        for thread in self._threads:
            thread.start()
        began = time.monotonic()
        for at, fault in sorted(faults, key=lambda f: f[0]):
            self._stop.wait(max(0.0, began + at - time.monotonic()))
            fault()
        self._stop.wait(max(0.0, began + seconds - time.monotonic()))
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def stored_rounds(database: str) -> tuple[list[tuple], list[tuple]]:
    """(rounds: id, base, new_version, summary), (updates: round_id, client, samples), from either database."""
    rounds_sql = "SELECT id, base_version, new_version, summary FROM rounds ORDER BY id"
    updates_sql = "SELECT round_id, client, samples FROM updates ORDER BY id"
    if database.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(database) as conn:
            return conn.execute(rounds_sql).fetchall(), conn.execute(updates_sql).fetchall()
    with sqlite3.connect(database) as conn:
        return conn.execute(rounds_sql).fetchall(), conn.execute(updates_sql).fetchall()


def _outcome(summary: Any) -> str | None:
    """The close's outcome from the summary column (JSON text in SQLite, a dict from PostgreSQL)."""
    if isinstance(summary, str):
        summary = json.loads(summary or "{}")
    return (summary or {}).get("outcome")


def check(database: str, registry: Registry, model: str, specs: list[dict], sent: list[Sent]) -> dict[str, Any]:
    """Every 200 in its round; each closed round's version = FedAvg over its stored rows; non-200s retryable."""
    rounds, updates = stored_rounds(database)
    rows: dict[int, list[tuple[str, int]]] = {}
    for round_id, client, samples in updates:
        rows.setdefault(round_id, []).append((client, samples))
    acknowledged = [s for s in sent if s.outcome == "200"]
    stored = {(round_id, client, samples) for round_id, client, samples in updates}
    missing = [s for s in acknowledged if (s.round, s.client, s.samples) not in stored]
    wrong_versions, worst = [], 0.0
    empty_closed = []
    for round_id, base, new_version, _summary in rounds:
        if new_version is None:
            continue
        members = rows.get(round_id, [])
        if not members:
            empty_closed.append(round_id)
            continue
        old, new = (trainable_parameters(registry.version_dir(model, v)) for v in (base, new_version))
        total = sum(n for _, n in members)
        for name in old:
            expected = (
                old[name].astype(np.float64)
                + sum(n * delta_of(client, base, specs)[1][name].astype(np.float32) for client, n in members) / total
            )
            difference = float(np.max(np.abs(new[name] - expected)))
            worst = max(worst, difference)
            if difference > 1e-5:
                wrong_versions.append(new_version)
    versions = registry.versions(model)
    not_retryable = Counter(s.outcome for s in sent if s.outcome != "200" and s.outcome not in RETRYABLE)
    return {
        "acknowledged": len(acknowledged),
        "acknowledged_not_stored": len(missing),
        "rows_stored": len(updates),
        "stored_not_acknowledged": len(updates) - len(acknowledged),  # answers lost to a kill: stored, never 200
        "rounds_closed": sum(1 for r in rounds if r[2] is not None),
        "versions": f"{versions[0]}..{versions[-1]} ({len(versions)}, none skipped: {versions == list(range(1, len(versions) + 1))})",
        "versions_not_fedavg": sorted(set(wrong_versions)),
        "worst_parameter_difference": worst,
        "rounds": [
            f"{round_id}: {base}->{new_version or 'open'} ({len(rows.get(round_id, []))}"
            f"{', ' + outcome if (outcome := _outcome(summary)) not in (None, 'published') else ''})"
            for round_id, base, new_version, summary in rounds
        ],
        "closed_without_updates": empty_closed,
        "not_retryable": dict(not_retryable),
        "passed": not missing
        and not wrong_versions
        and not not_retryable
        and not empty_closed
        and versions == list(range(1, len(versions) + 1)),
    }


def run_one(
    name: str,
    replicas: int,
    database: str,
    source: Path,
    model: str,
    args: argparse.Namespace,
    work: Path,
    faults: list[tuple[float, str, Any]],
) -> RunResult:
    registry_dir = work / name / "registry"
    latest = Registry(source).latest(model)
    shutil.copytree(source / model / str(latest), registry_dir / model / "1")
    registry = Registry(registry_dir)
    manifest = registry.manifest(model, 1)
    manifest["version"] = "1"
    (registry.version_dir(model, 1) / "model.json").write_text(json.dumps(manifest, indent=2))
    registry.set_latest(model, 1, check=False)
    specs = manifest["training"]["parameters"]
    aggregators = Aggregators(replicas, registry_dir, model, database, args.min_clients, work / name / "aggregate.log")
    result = RunResult(
        name, replicas, "PostgreSQL" if database.startswith("postgresql") else "SQLite", args.seconds, args.clients, args.concurrency
    )
    try:
        for index in range(replicas):
            aggregators.start(index)
        load = LoadClient(aggregators.ports, model, specs, args.clients, args.concurrency)
        began = time.monotonic()

        def fault(label: str, action: Any) -> Any:
            def run() -> None:
                action(aggregators)
                result.faults.append(f"{label} at {time.monotonic() - began:.1f} s")

            return run

        load.run(args.seconds, [(at, fault(label, action)) for at, label, action in faults])
        elapsed = time.monotonic() - began
    finally:
        aggregators.stop()
    accepted = [s for s in load.sent if s.outcome == "200"]
    result.accepted = len(accepted)
    result.accepted_per_second = len(accepted) / elapsed
    result.p50_ms = percentile([s.seconds * 1000 for s in accepted], 50)
    result.p99_ms = percentile([s.seconds * 1000 for s in accepted], 99)
    result.outcomes = dict(Counter(s.outcome for s in load.sent))
    result.check = check(database, registry, model, specs, load.sent)
    result.rounds_closed = result.check["rounds_closed"]
    return result


def markdown(results: list[RunResult], command: str) -> str:
    lines = [
        "# The aggregator under load and faults",
        "",
        f"`{command}` on this machine (2 shared cores; other sessions' tests ran meanwhile: rough figures).",
        "",
        "| run | replicas | store | clients | accepted/s | p50 ms | p99 ms | rounds closed | faults | not 200 (all retryable?) | check |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        others = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items()) if k != "200") or "none"
        verdict = "passed" if r.check["passed"] else "FAILED"
        lines.append(
            f"| {r.name} | {r.replicas} | {r.database} | {r.clients} | {r.accepted_per_second:.1f} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.rounds_closed} | {'; '.join(r.faults) or 'none'} | {others} "
            f"({'yes' if not r.check['not_retryable'] else 'no: ' + str(r.check['not_retryable'])}) | {verdict} |"
        )
    lines += ["", "Check per run (every 200 stored in the round its answer named; each version = FedAvg of its round's rows):", ""]
    for r in results:
        lines.append(f"- {r.name}: {json.dumps(r.check)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.aggregator_load", description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY, help="registry holding the model (the demo's)")
    parser.add_argument("--model", default="forecaster")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each run (60)")
    parser.add_argument("--clients", type=int, default=1000, help="distinct client ids (1000)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (16)")
    parser.add_argument("--min-clients", type=int, default=100, help="updates per round (100)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    try:
        Registry(args.registry).manifest(args.model, Registry(args.registry).latest(args.model) or 1)["training"]
    except Exception:  # noqa: BLE001 - one line, whatever is missing
        print(
            f"aggregator_load: error: no trainable {args.model} in {args.registry}; run `make bench` (or give --registry)", file=sys.stderr
        )
        return 2
    from tests.postgres import PostgresCluster, postgres_bin

    work = Path(tempfile.mkdtemp(prefix="ec-aggload-"))
    bin_dir = postgres_bin()
    if bin_dir is None:
        print("aggregator_load: error: PostgreSQL is not installed (`make system`)", file=sys.stderr)
        return 2
    cluster = PostgresCluster(bin_dir)
    results = []
    try:
        cluster.start()

        def kill_and_restart(aggregators: Aggregators) -> None:
            aggregators.kill(0)
            time.sleep(2.0)
            aggregators.start(0)

        def restart_postgres(aggregators: Aggregators) -> None:
            cluster.stop()
            time.sleep(1.0)
            cluster.start()

        third = args.seconds / 3
        results.append(
            run_one(
                "postgres-2",
                2,
                cluster.create_database(),
                args.registry,
                args.model,
                args,
                work,
                [
                    (third, "replica 0 SIGKILLed (restarted 2 s later)", kill_and_restart),
                    (2 * third, "PostgreSQL restarted", restart_postgres),
                ],
            )
        )
        results.append(run_one("sqlite-1", 1, str(work / "rounds.sqlite"), args.registry, args.model, args, work, []))
    finally:
        cluster.remove()
        shutil.rmtree(work, ignore_errors=True)
    command = "python -m benchmarks.aggregator_load " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "AGGREGATOR_LOAD.md").write_text(markdown(results, command.strip()))
    (args.out / "aggregator_load.json").write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    print(markdown(results, command.strip()))
    return 0 if all(r.check["passed"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
