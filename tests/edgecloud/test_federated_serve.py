"""The federated loop against a real `edgecloud serve` (a child process), a real MMS and a SQLite file:
updates over HTTP, serve stopped with SIGTERM and killed with SIGKILL mid-round and started again
with every accepted update kept, the round closing into version 2 = FedAvg of what was sent, MMS
serving it beside version 1 with no failed request meanwhile, latest.json moving last; and serve
started again over what a publication killed midway leaves (test_federated_publish_crash.py kills
one at each step): none of it is served, and the round closes into version 2 written again."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from edgecloud.cli import main as cli
from export.federated_version import trainable_parameters, write_federated_version
from export.manifest import read_manifest
from registry import Registry
from tests.builders import write_trainable_version_dir
from tests.conftest import free_port

RNG = np.random.default_rng(11)
CLIENTS = [
    (f"client-{i:04d}", samples, {"head.weight": RNG.normal(0, 0.1, (8, 2)), "head.bias": RNG.normal(0, 0.1, 2)})
    for i, samples in enumerate((10, 20, 30))
]


def _http(method: str, url: str, body: dict | bytes | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _update(client: str, samples: int, delta: dict, base: str = "1") -> dict:
    return {
        "client": client,
        "base_version": base,
        "samples": samples,
        "delta": {n: {"shape": list(v.shape), "data": v.ravel().tolist()} for n, v in delta.items()},
    }


class Serve:
    """`edgecloud serve --federated mlp` in a child process on fixed ports, restartable."""

    def __init__(self, tmp_path: Path) -> None:
        self.store, self.registry = tmp_path / "store", tmp_path / "registry"
        self.ports = [free_port() for _ in range(3)]
        self.tmp = Path(tempfile.mkdtemp(prefix="ecf-", dir="/tmp"))
        self.process: subprocess.Popen | None = None
        self.web = f"http://127.0.0.1:{self.ports[2]}"
        self.cloud = f"http://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgecloud",
                "serve",
                "--model-store",
                str(self.store),
                "--registry",
                str(self.registry),
                "--inference-port",
                str(self.ports[0]),
                "--management-port",
                str(self.ports[1]),
                "--web-port",
                str(self.ports[2]),
                "--federated",
                "mlp",
                "--min-clients",
                "3",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TMPDIR": str(self.tmp)},
        )
        for line in self.process.stdout:
            if line.startswith("Press Ctrl-C"):
                return
        pytest.fail(f"serve did not start: {self.process.stderr.read()[-3000:]}")

    def children(self) -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(stat.parent.name))
        return found

    def kill(self) -> None:
        """SIGKILL serve and, as a crash of the machine would, MMS's process group (it runs in a session of its own)."""
        children = self.children()
        self.process.kill()
        self.process.wait()
        for pid in children:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


def _load(url: str, stop: threading.Event, statuses: list[int]) -> None:
    body = json.dumps({"inputs": {"x": [[0.5, -1.0, 2.0, 0.25]]}}).encode()
    while not stop.is_set():
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
        except OSError:
            statuses.append(-1)


@pytest.mark.integration
def test_round_survives_sigterm_and_sigkill_then_closes_into_a_served_fedavg_version(tmp_path: Path) -> None:
    serve = Serve(tmp_path)
    base_dir = write_trainable_version_dir(serve.registry / "mlp" / "1")
    Registry(serve.registry).set_latest("mlp", 1)
    assert cli(["archive", str(base_dir), "--out", str(serve.store)]) == 0
    base = trainable_parameters(base_dir)
    updates = f"{serve.web}/federated/mlp/updates"
    try:
        serve.start()
        assert _http("GET", f"{serve.web}/config.json")[1]["federated"] == f"{serve.web}/federated"
        described = _http("GET", f"{serve.web}/federated/mlp")[1]
        assert (described["round"], described["base_version"], described["accepted"]) == (1, "1", 0)
        assert _http("POST", updates, _update(*CLIENTS[0]))[0] == 200
        status, answer = _http("POST", updates, _update(*CLIENTS[1], base="0"))
        assert status == 409 and "'1'" in answer["message"]
        connection = http.client.HTTPConnection("127.0.0.1", serve.ports[2], timeout=30)
        connection.putrequest("POST", "/federated/mlp/updates")
        connection.putheader("Content-Length", str(10**9))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413 and json.loads(response.read())["error"] == "too-large"
        connection.close()

        serve.terminate()
        serve.start()
        assert _http("GET", f"{serve.web}/federated/mlp")[1]["accepted"] == 1
        assert _http("POST", updates, _update(*CLIENTS[0]))[1]["error"] == "duplicate-client"
        assert _http("POST", updates, _update(*CLIENTS[1]))[0] == 200

        serve.kill()
        serve.start()
        assert _http("GET", f"{serve.web}/federated/mlp")[1]["accepted"] == 2

        stop, statuses = threading.Event(), []
        loader = threading.Thread(target=_load, args=(f"{serve.cloud}/predictions/mlp", stop, statuses))
        loader.start()
        try:
            assert _http("POST", updates, _update(*CLIENTS[2]))[0] == 200
            latest = serve.registry / "mlp" / "latest.json"
            for _ in range(240):
                if json.loads(latest.read_text())["version"] == "2":
                    break
                stop.wait(0.5)
        finally:
            stop.set()
            loader.join()
        assert json.loads(latest.read_text())["version"] == "2", _http("GET", f"{serve.web}/federated/mlp")[1]
        assert len(statuses) > 10 and set(statuses) == {200}, sorted(set(statuses))

        # Version 2 holds base + Σ nᵢΔᵢ / Σ nᵢ of what was sent.
        new_dir = serve.registry / "mlp" / "2"
        total = sum(n for _, n, _ in CLIENTS)
        got = {init.name: numpy_helper.to_array(init) for init in onnx.load(str(new_dir / "model.onnx")).graph.initializer}
        for name in base:
            expected = base[name].astype(np.float64) + sum(n * d[name] for _, n, d in CLIENTS) / total
            np.testing.assert_allclose(got[name], expected, rtol=0, atol=1e-6)
        manifest = json.loads((new_dir / "model.json").read_text())
        assert manifest["federated"]["clients"] == 3 and manifest["federated"]["samples"] == 60

        # The name follows the new version (docs/versions.md): mlp and mlp-v2 answer as onnxruntime does on the
        # new file; version 1 still answers on its version path.
        x = [[0.5, -1.0, 2.0, 0.25]]
        expected = ort.InferenceSession(str(new_dir / "model.onnx")).run(None, {"x": np.asarray(x, np.float32)})[0]
        for path in ("/predictions/mlp-v2", "/predictions/mlp"):
            for _ in range(120):  # the replica's watcher routes the name once it sees latest.json move
                status, answer = _http("POST", f"{serve.cloud}{path}", {"inputs": {"x": x}})
                if answer.get("model_version") == "2":
                    break
                stop.wait(0.5)
            assert (status, answer["model_version"]) == (200, "2")  # the answer names the version that computed it
            np.testing.assert_allclose(answer["outputs"]["y"], expected, rtol=1e-6, atol=1e-6)
        old = ort.InferenceSession(str(base_dir / "model.onnx")).run(None, {"x": np.asarray(x, np.float32)})[0]
        v2_body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x[0]}]}
        status, answer = _http("POST", f"{serve.cloud}/v2/models/mlp/versions/1/infer", v2_body)
        assert (status, answer["model_version"]) == (200, "1") and not np.allclose(expected, old)
        np.testing.assert_allclose(np.reshape(answer["outputs"][0]["data"], old.shape), old, rtol=1e-6, atol=1e-6)
        assert _http("GET", f"{serve.web}/config.json")[1]["cloudModels"] == {"mlp": {"1": "mlp-v1", "2": "mlp-v2"}}
        assert _http("GET", f"{serve.web}/federated/mlp")[1]["base_version"] == "2"
    finally:
        serve.terminate()

    result = subprocess.run(
        [sys.executable, "-m", "edgecloud", "federated", "status", str(serve.store / "mlp")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    first_round = result.stdout.splitlines()[1].split()
    assert first_round[:4] == ["1", "1", "3", "60"] and first_round[-2:] == ["2", "(fedavg)"], result.stdout
    assert "stale-base 1" in result.stdout and "duplicate-client 1" in result.stdout


@pytest.mark.integration
def test_serve_started_over_a_killed_publications_leftovers_serves_none_of_them_and_publishes_the_round(tmp_path: Path) -> None:
    serve = Serve(tmp_path)
    base_dir = write_trainable_version_dir(serve.registry / "mlp" / "1")
    Registry(serve.registry).set_latest("mlp", 1)
    assert cli(["archive", str(base_dir), "--out", str(serve.store)]) == 0
    model_dir, latest = serve.registry / "mlp", serve.registry / "mlp" / "latest.json"
    base, x = trainable_parameters(base_dir), {"inputs": {"x": [[0.5, -1.0, 2.0, 0.25]]}}
    try:
        serve.start()
        for client in CLIENTS[:2]:
            assert _http("POST", f"{serve.web}/federated/mlp/updates", _update(*client))[0] == 200
        serve.kill()
        # What a close killed after writing leaves, from the two updates it had then: a whole version 2
        # latest.json does not name (a round closes only from its recorded updates, so not this one's
        # aggregate once the third arrives), and a staging folder half written after it.
        early = {name: base[name] + sum(n * d[name] for _, n, d in CLIENTS[:2]) / 30 for name in base}
        provenance = {"round": 1, "base_version": "1", "clients": 2, "samples": 30, "aggregation": "fedavg"}
        write_federated_version(model_dir, "1", early, provenance)
        (model_dir / ".staging-3").mkdir()

        serve.start()
        assert json.loads(latest.read_text())["version"] == "1"
        assert _http("POST", f"{serve.cloud}/predictions/mlp", x)[1]["model_version"] == "1"
        assert _http("POST", f"{serve.cloud}/predictions/mlp-v2", x)[0] == 404  # never served: latest.json does not name it
        assert _http("POST", f"{serve.web}/federated/mlp/updates", _update(*CLIENTS[2]))[0] == 200
        for _ in range(240):
            if json.loads(latest.read_text())["version"] == "2":
                break
            threading.Event().wait(0.5)
        assert json.loads(latest.read_text())["version"] == "2", _http("GET", f"{serve.web}/federated/mlp")[1]
        assert sorted(p.name for p in model_dir.iterdir() if p.is_dir()) == ["1", "2"]  # no version 3, no staging left
        assert read_manifest(model_dir / "2")["federated"]["clients"] == 3  # written again from all three updates
        total = sum(n for _, n, _ in CLIENTS)
        got = trainable_parameters(model_dir / "2")
        for name in base:
            expected = base[name].astype(np.float64) + sum(n * d[name] for _, n, d in CLIENTS) / total
            np.testing.assert_allclose(got[name], expected, rtol=0, atol=1e-6)
        for _ in range(240):  # the replica's watcher registers version 2 once it sees latest.json move
            status, answer = _http("POST", f"{serve.cloud}/predictions/mlp-v2", x)
            if status == 200:
                break
            threading.Event().wait(0.5)
        assert (status, answer["model_version"]) == (200, "2")
        described = _http("GET", f"{serve.web}/federated/mlp")[1]
        assert (described["round"], described["base_version"], described["accepted"]) == (2, "2", 0)
    finally:
        serve.terminate()
