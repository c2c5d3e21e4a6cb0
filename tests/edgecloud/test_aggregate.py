"""`edgecloud aggregate` as real processes: one on SQLite, two replicas on a real PostgreSQL
(tests/postgres.py), a replica killed while it closes a round, the database stopped and made
read-only under it. Updates go over HTTP; versions are read back from the registry folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import psycopg
import pytest

from export.federated_version import trainable_parameters
from registry import Registry
from tests.builders import write_trainable_version_dir
from tests.conftest import free_port
from tests.postgres import PostgresCluster, postgres, postgres_url  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(24)


def delta() -> dict[str, np.ndarray]:
    return {"head.weight": RNG.normal(0, 0.1, (8, 2)), "head.bias": RNG.normal(0, 0.1, 2)}


def update_body(client: str, samples: int, values: dict[str, np.ndarray], base: str) -> bytes:
    return json.dumps(
        {
            "client": client,
            "base_version": base,
            "samples": samples,
            "delta": {n: {"shape": list(v.shape), "data": v.ravel().tolist()} for n, v in values.items()},
        }
    ).encode()


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None):
    """(status, headers, JSON or text) of one request; never raises on an HTTP error status."""
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, head, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, head, raw = error.code, error.headers, error.read()
    try:
        return status, head, json.loads(raw) if raw else None
    except ValueError:
        return status, head, raw.decode()


class Aggregate:
    """`python -m edgecloud aggregate ...` in a child process."""

    def __init__(self, registry: Path, database: str, *flags: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgecloud",
                "aggregate",
                "--registry",
                str(registry),
                "--federated",
                "mlp",
                "--database",
                database,
                "--port",
                str(self.port),
                *flags,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for line in self.process.stdout:
            if line.startswith("Press Ctrl-C"):
                return
        pytest.fail(f"aggregate did not start: {self.process.stderr.read()[-3000:]}")

    def post(self, client: str, samples: int, values: dict[str, np.ndarray], base: str):
        return http("POST", f"{self.url}/federated/mlp/updates", update_body(client, samples, values, base))

    def wait_for_round_on(self, version: str) -> None:
        """Until GET /federated/mlp names `version` as the open round's base: what a client asks before
        it trains. latest.json moves before the next round opens in the store, so an update sent on
        latest.json's word alone may still meet the closing round (409)."""
        for _ in range(300):
            if http("GET", f"{self.url}/federated/mlp")[2]["base_version"] == version:
                return
            threading.Event().wait(0.1)
        pytest.fail(f"the open round's base is still {http('GET', f'{self.url}/federated/mlp')[2]['base_version']}, not {version}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def make_registry(tmp_path: Path) -> Path:
    registry = tmp_path / "registry"
    write_trainable_version_dir(registry / "mlp" / "1")
    Registry(registry).set_latest("mlp", 1)
    return registry


def latest(registry: Path) -> str:
    return json.loads((registry / "mlp" / "latest.json").read_text())["version"]


def wait_for_version(registry: Path, version: str, event: threading.Event | None = None) -> None:
    event = event or threading.Event()
    for _ in range(600):
        if latest(registry) == version:
            return
        event.wait(0.2)
    pytest.fail(f"latest.json still names version {latest(registry)}, not {version}")


def assert_fedavg(registry: Path, version: str, base: str, sent: list[tuple[int, dict[str, np.ndarray]]]) -> None:
    """Version `version` holds base + Σ nᵢΔᵢ / Σ nᵢ of exactly what was sent (float32 rounding)."""
    old, new = trainable_parameters(registry / "mlp" / base), trainable_parameters(registry / "mlp" / version)
    total = sum(n for n, _ in sent)
    for name in old:
        expected = old[name].astype(np.float64) + sum(n * d[name].astype(np.float32) for n, d in sent) / total
        np.testing.assert_allclose(new[name], expected, rtol=0, atol=1e-6)


def folders(registry: Path) -> list[str]:
    """Every folder of the model, staging folders (hidden) included."""
    return sorted(c.name for c in (registry / "mlp").iterdir() if c.is_dir())


def test_one_process_on_sqlite_serves_the_api_health_metrics_cors_limits_and_drains(tmp_path: Path) -> None:
    registry = make_registry(tmp_path)
    aggregator = Aggregate(
        registry,
        str(tmp_path / "rounds.sqlite"),
        "--min-clients",
        "2",
        "--max-update-bytes",
        "4096",
        "--cors-origin",
        "http://page.example",
        "--drain-seconds",
        "30",
    )
    try:
        assert http("GET", f"{aggregator.url}/live")[::2] == (200, {"live": True})
        assert http("GET", f"{aggregator.url}/ready")[::2] == (200, {"ready": True})
        status, head, _ = http("GET", f"{aggregator.url}/federated/mlp", headers={"Origin": "http://page.example"})
        assert (status, head["Access-Control-Allow-Origin"]) == (200, "http://page.example")
        status, head, _ = http("GET", f"{aggregator.url}/federated/mlp", headers={"Origin": "http://elsewhere.example"})
        assert status == 200 and "Access-Control-Allow-Origin" not in head
        status, head, _ = http("OPTIONS", f"{aggregator.url}/federated/mlp/updates", headers={"Origin": "http://page.example"})
        assert (
            status == 204
            and head["Access-Control-Allow-Origin"] == "http://page.example"
            and "POST" in head["Access-Control-Allow-Methods"]
        )

        status, _, answer = http("POST", f"{aggregator.url}/federated/mlp/updates", b"x" * 5000)
        assert (status, answer["error"]) == (413, "too-large")
        status, _, answer = http("POST", f"{aggregator.url}/federated/mlp/updates", b"{not json")
        assert (status, answer["error"]) == (400, "bad-json")

        sent = [(3, delta()), (5, delta())]
        assert aggregator.post("client-0001", *sent[0], base="1")[0] == 200
        assert aggregator.post("client-0002", *sent[1], base="1")[0] == 200
        wait_for_version(registry, "2")
        assert_fedavg(registry, "2", "1", sent)
        assert http("GET", f"{aggregator.url}/federated/mlp")[2]["base_version"] == "2"
        metrics = http("GET", f"{aggregator.url}/metrics")[2]
        assert 'edgecloud_federated_rounds_closed_total{model="mlp"} 1.0' in metrics
        assert 'edgecloud_federated_updates_accepted_total{model="mlp"} 2.0' in metrics

        aggregator.process.terminate()  # SIGTERM: readiness fails first, the process keeps answering
        for _ in range(300):
            if http("GET", f"{aggregator.url}/ready")[0] == 503:
                break
            threading.Event().wait(0.1)
        assert http("GET", f"{aggregator.url}/ready")[::2] == (503, {"ready": False, "reason": "draining"})
        assert http("GET", f"{aggregator.url}/live")[0] == 200
        assert aggregator.process.wait(timeout=120) == 0
    finally:
        aggregator.stop()


def test_two_replicas_on_postgres_close_each_round_exactly_once(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    registry = make_registry(tmp_path)
    replicas = [Aggregate(registry, postgres_url, "--min-clients", "4") for _ in range(2)]
    try:
        for base, version in (("1", "2"), ("2", "3")):
            sent = [(n, delta()) for n in (1, 2, 3, 4)]
            answers: list[int] = []
            threads = [
                threading.Thread(target=lambda i=i: answers.append(replicas[i % 2].post(f"client-{base}-{i:04d}", *sent[i], base=base)[0]))
                for i in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert answers == [200] * 4
            wait_for_version(registry, version)
            assert_fedavg(registry, version, base, sent)
            for replica in replicas:  # the replica that did not close follows the store's new round
                replica.wait_for_round_on(version)
        assert folders(registry) == ["1", "2", "3"]
    finally:
        for replica in replicas:
            replica.stop()
    with psycopg.connect(postgres_url) as conn:
        rounds = conn.execute(
            "SELECT id, base_version, new_version, (SELECT COUNT(*) FROM updates u WHERE u.round_id = r.id) FROM rounds r ORDER BY id"
        ).fetchall()
    assert rounds == [(1, "1", "2", 4), (2, "2", "3", 4), (3, "3", None, 0)]


def test_a_replica_killed_while_closing_leaves_the_round_to_another(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    registry = make_registry(tmp_path)
    closer_port = free_port()
    closer = subprocess.Popen(
        [sys.executable, "-m", "tests.edgecloud.stalled_closer", str(registry), postgres_url, "mlp", str(closer_port), "2"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    other = None
    try:
        assert closer.stdout.readline().startswith("ready")
        sent = [(2, delta()), (6, delta())]
        for i, (n, values) in enumerate(sent):
            status, _, _ = http(
                "POST", f"http://127.0.0.1:{closer_port}/federated/mlp/updates", update_body(f"client-{i:04d}", n, values, "1")
            )
            assert status == 200
        assert closer.stdout.readline().strip() == "written 2"  # version 2 is on disk, latest.json not moved yet
        assert latest(registry) == "1"

        other = Aggregate(registry, postgres_url, "--min-clients", "2")
        status, _, answer = other.post("client-late-0001", 1, delta(), base="1")
        assert (status, answer["error"]) == (409, "round-closing")  # the round is claimed: nothing enters it now
        closer.kill()
        closer.wait(timeout=30)
        wait_for_version(registry, "2")
        assert_fedavg(registry, "2", "1", sent)
        assert folders(registry) == ["1", "2"]  # version 2 published as written, not written again as 3

        other.wait_for_round_on("2")
        again = [(1, delta()), (1, delta())]
        assert other.post("client-0000", *again[0], base="2")[0] == 200
        assert other.post("client-0001", *again[1], base="2")[0] == 200
        wait_for_version(registry, "3")
        assert_fedavg(registry, "3", "2", again)
        assert folders(registry) == ["1", "2", "3"]
    finally:
        if closer.poll() is None:
            closer.kill()
            closer.wait()
        if other is not None:
            other.stop()
    with psycopg.connect(postgres_url) as conn:
        rounds = conn.execute(
            "SELECT id, new_version, (SELECT COUNT(*) FROM updates u WHERE u.round_id = r.id) FROM rounds r ORDER BY id"
        ).fetchall()
    assert rounds == [(1, "2", 2), (2, "3", 2), (3, None, 0)]


def test_database_down_or_read_only_is_503_with_retry_after_and_loses_nothing(
    tmp_path: Path,
    postgres: PostgresCluster,  # noqa: F811
    postgres_url: str,  # noqa: F811
) -> None:
    registry = make_registry(tmp_path)
    aggregator = Aggregate(registry, postgres_url, "--min-clients", "5")
    accepted: list[tuple[int, dict[str, np.ndarray]]] = []
    clients = iter(f"client-{i:04d}" for i in range(1000))

    def send_until(wanted: int) -> tuple[int, dict, dict]:
        """Send fresh updates until one gets `wanted` (the page's retry); keep those that got 200."""
        for _ in range(150):
            update = (len(accepted) + 1, delta())
            status, head, answer = aggregator.post(next(clients), *update, base="1")
            if status == 200:
                accepted.append(update)
            else:
                assert (status, answer["error"], head["Retry-After"]) == (503, "store-unavailable", "5"), answer
                assert "Traceback" not in answer["message"]
            if status == wanted:
                return status, head, answer
            threading.Event().wait(0.2)
        pytest.fail(f"no {wanted} answer")

    try:
        send_until(200)
        postgres.stop()
        try:
            _, _, answer = send_until(503)
            assert "PostgreSQL at 127.0.0.1" in answer["message"]
            assert http("GET", f"{aggregator.url}/ready")[0] == 503
            assert http("GET", f"{aggregator.url}/live")[0] == 200
        finally:
            postgres.start()
        send_until(200)  # the pool reconnects by itself

        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            conn.execute("SELECT pg_reload_conf()")
        try:
            _, _, answer = send_until(503)
            assert "read-only" in answer["message"]
        finally:
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute("SET default_transaction_read_only = off")
                conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
                conn.execute("SELECT pg_reload_conf()")
        while len(accepted) < 5:
            send_until(200)
        wait_for_version(registry, "2")
        assert_fedavg(registry, "2", "1", accepted)  # every acknowledged update, each once
    finally:
        aggregator.stop()


def test_client_secret_takes_only_signed_updates_and_counts_the_others(tmp_path: Path) -> None:
    import base64
    import time

    from aggregation.tokens import issue, read_secret

    registry = make_registry(tmp_path)
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(base64.b64encode(os.urandom(48)).decode() + "\n")
    aggregator = Aggregate(registry, str(tmp_path / "rounds.sqlite"), "--min-clients", "5", "--client-secret", str(secret_file))
    try:
        values = delta()
        status, _, answer = aggregator.post("client-0001", 1, values, base="1")
        assert status == 401, answer
        token = issue(read_secret(secret_file), "client-0001", int(time.time()) + 3600)
        body = json.loads(update_body("client-0001", 1, values, "1"))
        status, _, answer = http("POST", f"{aggregator.url}/federated/mlp/updates", json.dumps({**body, "token": token}).encode())
        assert (status, answer["accepted"]) == (200, True)
        metrics = http("GET", f"{aggregator.url}/metrics")[2]
        assert (
            "edgecloud_federated_updates_unauthorized_total" in metrics
            and 'edgecloud_federated_updates_accepted_total{model="mlp"} 1.0' in metrics
        )
    finally:
        aggregator.stop()
