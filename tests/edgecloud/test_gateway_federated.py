"""`edgecloud serve --replicas 2 --federated mlp` with EDGECLOUD_AGGREGATOR_DATABASE=postgresql://...: two
MMS replicas and two `edgecloud aggregate` processes on a real PostgreSQL behind the real HAProxy,
the URL's password on no process's command line. Updates sent to the gateway close rounds into
registry versions; an aggregator SIGKILLed is routed around (no update fails) and started again;
SIGTERM stops everything it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgecloud.cli import main as cli
from edgecloud.commands.aggregate import DATABASE_ENV
from registry import Registry
from tests.builders import write_trainable_version_dir
from tests.conftest import consecutive_free_ports, free_port
from tests.edgecloud.test_aggregate import assert_fedavg, delta, folders, http, update_body, wait_for_version
from tests.postgres import postgres, postgres_url  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.integration
PASSWORD = "not-for-ps-eyes"


def aggregator_pids(registry: Path) -> list[int]:
    """Running `edgecloud aggregate` processes of this registry."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"aggregate" in argv and str(registry.resolve()).encode() in argv:
            found.append(int(cmdline.parent.name))
    return sorted(found)


def test_serve_replicas_with_aggregators_on_postgres(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    registry, store = tmp_path / "registry", tmp_path / "store"
    # A password the cluster does not ask for (trust authentication), so only where it shows is tested.
    database = postgres_url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    assert PASSWORD in database
    write_trainable_version_dir(registry / "mlp" / "1")
    Registry(registry).set_latest("mlp", 1)
    assert cli(["archive", str(registry / "mlp" / "1"), "--out", str(store)]) == 0
    base, gateway_port = consecutive_free_ports(4), consecutive_free_ports(3)  # gateway + the 2 replicas' front doors
    gateway = f"http://127.0.0.1:{gateway_port}"
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgecloud",
            "serve",
            "--model-store",
            str(store),
            "--registry",
            str(registry),
            "--replicas",
            "2",
            "--gateway-port",
            str(gateway_port),
            "--inference-port",
            str(base),
            "--management-port",
            str(base + 1),
            "--web-port",
            str(free_port()),
            "--java-heap",
            "256",
            "--federated",
            "mlp",
            "--min-clients",
            "2",
            "--drain-seconds",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, DATABASE_ENV: database},
    )
    try:
        for line in serve.stdout:
            if line.startswith("Press Ctrl-C"):
                break
        else:
            pytest.fail(f"serve did not start: {serve.stderr.read()[-3000:]}")
        assert http("GET", f"{gateway}/config.json")[2]["federated"] == f"{gateway}/federated"
        assert len(aggregator_pids(registry)) == 2
        for pid in [serve.pid, *aggregator_pids(registry)]:  # the URL reaches them in the environment, out of `ps`
            assert PASSWORD.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert all(f"{DATABASE_ENV}={database}".encode() in Path(f"/proc/{pid}/environ").read_bytes() for pid in aggregator_pids(registry))

        def post(client: str, values, base_version: str) -> int:
            return http("POST", f"{gateway}/federated/mlp/updates", update_body(client, 1, values, base_version))[0]

        sent = [(1, delta()), (1, delta())]
        assert [post(f"client-a-{i:04d}", values, "1") for i, (_, values) in enumerate(sent)] == [200, 200]
        wait_for_version(registry, "2")
        assert_fedavg(registry, "2", "1", sent)

        killed = aggregator_pids(registry)[0]
        os.kill(killed, signal.SIGKILL)
        sent = [(1, delta()), (1, delta())]
        assert [post(f"client-b-{i:04d}", values, "2") for i, (_, values) in enumerate(sent)] == [200, 200]
        wait_for_version(registry, "3")
        assert_fedavg(registry, "3", "2", sent)
        assert folders(registry) == ["1", "2", "3"]
        for _ in range(300):  # the gateway's process set starts the killed aggregator again
            pids = aggregator_pids(registry)
            if len(pids) == 2 and killed not in pids:
                break
            subprocess.run(["sleep", "0.2"])
        assert len(pids) == 2 and killed not in pids
        metrics = http("GET", f"{gateway}/metrics")[2]
        assert 'edgecloud_federated_rounds_closed_total{model="mlp"' in metrics
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            assert serve.wait(timeout=120) == 0, serve.stderr.read()[-3000:]
        finally:
            if serve.poll() is None:
                serve.kill()
    assert aggregator_pids(registry) == []
    assert json.loads((registry / "mlp" / "latest.json").read_text())["version"] == "3"
