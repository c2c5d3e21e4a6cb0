"""`edgecloud serve --federated mlp --rounds buffered --buffer 2 --max-staleness 1 --client-secret FILE`
as a child process with a real MMS and SQLite file: the flags reach the aggregator it runs. Updates
without a token are 401; two with their clients' tokens close into version 2, published and served;
then an update on version 1 is taken one version stale with weight 1/sqrt(2), and the SQLite file
records it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from aggregation.tokens import issue, read_secret
from edgecloud.cli import main as cli
from registry import Registry
from tests.builders import write_trainable_version_dir
from tests.conftest import free_port


def post(url: str, client: str, base: str, token: str | None, rng: np.random.Generator) -> tuple[int, dict]:
    body = {
        "client": client,
        "base_version": base,
        "samples": 10,
        "delta": {
            "head.weight": {"shape": [8, 2], "data": rng.normal(0, 0.1, 16).tolist()},
            "head.bias": {"shape": [2], "data": rng.normal(0, 0.1, 2).tolist()},
        },
    }
    if token:
        body["token"] = token
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.integration
def test_serve_runs_buffered_rounds_that_take_only_tokened_updates(tmp_path: Path) -> None:
    store, registry, secret_file = tmp_path / "store", tmp_path / "registry", tmp_path / "client-secret"
    write_trainable_version_dir(registry / "mlp" / "1")
    Registry(registry).set_latest("mlp", 1)
    assert cli(["archive", str(registry / "mlp" / "1"), "--out", str(store)]) == 0
    secret_file.write_text("z" * 48 + "\n")
    secret, expires = read_secret(secret_file), int(time.time()) + 3600
    tokens = {client: issue(secret, client, expires) for client in ("client-0001", "client-0002", "client-0003")}
    ports = [free_port() for _ in range(3)]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgecloud",
            "serve",
            "--model-store",
            str(store),
            "--registry",
            str(registry),
            "--inference-port",
            str(ports[0]),
            "--management-port",
            str(ports[1]),
            "--web-port",
            str(ports[2]),
            "--federated",
            "mlp",
            "--rounds",
            "buffered",
            "--buffer",
            "2",
            "--max-staleness",
            "1",
            "--client-secret",
            str(secret_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": tempfile.mkdtemp(prefix="ecb-", dir="/tmp")},
    )
    rng = np.random.default_rng(5)
    updates = f"http://127.0.0.1:{ports[2]}/federated/mlp/updates"
    try:
        for line in process.stdout:
            if line.startswith("Press Ctrl-C"):
                break
        else:
            pytest.fail(f"serve did not start: {process.stderr.read()[-3000:]}")
        assert post(updates, "client-0001", "1", None, rng)[1]["error"] == "token-required"
        assert post(updates, "client-0002", "1", tokens["client-0001"], rng)[1]["error"] == "token-client"
        assert post(updates, "client-0001", "1", tokens["client-0001"], rng)[0] == 200
        assert post(updates, "client-0002", "1", tokens["client-0002"], rng)[0] == 200
        latest = registry / "mlp" / "latest.json"
        for _ in range(240):
            if json.loads(latest.read_text())["version"] == "2":
                break
            time.sleep(0.5)
        assert json.loads(latest.read_text())["version"] == "2"
        status, answer = post(updates, "client-0003", "1", tokens["client-0003"], rng)  # trained on version 1
        assert (status, answer["base_version"], answer["staleness"]) == (200, "2", 1)
        assert answer["weight"] == pytest.approx(2**-0.5, rel=1e-12)
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[2]}/federated/metrics", timeout=30) as scrape:
            metrics = scrape.read().decode()
        assert 'edgecloud_federated_updates_unauthorized_total{model="mlp",reason="token-required"} 1.0' in metrics
    finally:
        process.terminate()
        process.wait(timeout=60)
    with sqlite3.connect(store / "federated.sqlite") as db:
        rows = db.execute("SELECT client, base_version, staleness, weight FROM updates ORDER BY id").fetchall()
    assert [row[:3] for row in rows] == [("client-0001", "1", 0), ("client-0002", "1", 0), ("client-0003", "1", 1)]
