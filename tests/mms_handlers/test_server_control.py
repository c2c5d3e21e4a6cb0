"""Server control with real MMS instances: side by side, clean stop, registration rules, engines, the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from edgecloud.cli import main as cli
from mms_handlers.archive import build_archive
from mms_handlers.engines.ort import threads_per_worker
from mms_handlers.server import MmsServer, ServerConfig, ServerError, config_properties
from mms_handlers.worker_hooks import LOAD_ERRORS_FILE
from tests.conftest import free_port

from . import models

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A registry and a model store: mlp (onnxruntime), mlpmx (the same on MXNet), nomx (MXNet cannot import it)."""
    root = tmp_path_factory.mktemp("control")
    registry, store = root / "registry", root / "store"
    build_archive(models.mlp(registry), store)
    build_archive(models.two_in_two_out(registry), store)
    build_archive(models.mlp(registry, "mlpmx"), store, engine="mxnet")
    build_archive(models.not_for_mxnet(registry), store, engine="mxnet")
    return registry, store


def predict(url: str, model: str, x: np.ndarray, headers: dict[str, str] | None = None):
    request = urllib.request.Request(
        f"{url}/predictions/{model}",
        data=json.dumps(x.tolist()).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return np.asarray(json.loads(response.read())["outputs"]["y"]), response.headers


def alive(pids: list[int]) -> list[int]:
    left = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            left.append(pid)
    return left


def new_server(store: Path) -> MmsServer:
    return MmsServer(ServerConfig(model_store=store, inference_port=free_port(), management_port=free_port()))


def test_two_instances_side_by_side_and_stop_leaves_nothing(stores):
    _, store = stores
    x = np.random.default_rng(2).standard_normal((2, 4)).astype(np.float32)
    first, second = new_server(store), new_server(store)
    with first, second:
        for server in (first, second):
            server.register("mlp.mar")
            np.testing.assert_allclose(predict(server.config.inference_url, "mlp", x)[0], models.mlp_reference(x), atol=1e-6)
        assert first.runtime_dir != second.runtime_dir
        for server in (first, second):  # each its own pid file, model folder and logs
            assert (server.runtime_dir / "tmp" / ".model_server.pid").is_file()
            assert (server.runtime_dir / "logs" / "mms_log.log").is_file()
        first_pids, second_pids = first.process_ids(), second.process_ids()
        assert len(first_pids) >= 3 and len(second_pids) >= 3  # launcher, java, one Python worker at least
        assert not set(first_pids) & set(second_pids)
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in first_pids]
        assert any(b"java" in c for c in commands) and any(b"model_service_worker" in c for c in commands)

        first.stop()
        assert alive(first_pids) == []
        assert not first.runtime_dir.exists()
        assert second.ping() == "Healthy" and alive(second_pids) == second_pids
        predict(second.config.inference_url, "mlp", x)
    assert alive(second_pids) == []


def test_mxnet_engine_serves_and_an_unimportable_model_fails_registration_naming_the_operator(stores):
    _, store = stores
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    with new_server(store) as server:
        server.register("mlpmx.mar")
        np.testing.assert_allclose(predict(server.config.inference_url, "mlpmx", x)[0], models.mlp_reference(x), atol=1e-5)
        with pytest.raises(ServerError, match=r"registering nomx.mar failed \(500\).*cannot import operator ConstantOfShape"):
            server.register("nomx.mar")
        # The reason also reaches a file of its own, which MMS's copy of the worker's output cannot cut short.
        assert "cannot import operator ConstantOfShape" in (server.log_dir / LOAD_ERRORS_FILE).read_text()
        assert "nomx" not in [model["modelName"] for model in server.models()]
        assert server.ping() == "Healthy"


@pytest.mark.parametrize("mar", ["../registry/mlp/1/model.onnx", "http://example.com/mlp.mar", "/etc/passwd", "missing.mar"])
def test_register_refuses_anything_outside_the_model_store(stores, mar):
    _, store = stores
    server = new_server(store)  # refused before any request: no need to start it
    with pytest.raises(ServerError, match="only .mar files inside the model store"):
        server.register(mar)


def test_generated_config_keeps_management_on_loopback():
    config = ServerConfig(
        model_store=Path("/tmp/store"),
        host="0.0.0.0",
        inference_port=8080,
        management_port=8081,
        cors_origins=["http://a.test", "http://a.test"],
        job_queue_size=7,
        max_request_size=1234,
    )
    lines = config_properties(config).splitlines()
    for line in (
        "inference_address=http://0.0.0.0:8080",
        "management_address=http://127.0.0.1:8081",
        "decode_input_request=false",
        "job_queue_size=7",
        "max_request_size=1234",
        "cors_allowed_origin=http://a.test",
    ):
        assert line in lines
    config.cors_origins = ["http://a.test", "http://b.test"]  # MMS can answer one: never silently '*'
    with pytest.raises(ServerError, match="one allowed origin"):
        config_properties(config)


def test_threads_split_the_cores_between_workers():
    assert threads_per_worker(1, cores=8) == 8
    assert threads_per_worker(4, cores=8) == 2
    assert threads_per_worker(16, cores=8) == 1


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--inference-port", "40000"], "--inference-port 40000: Multi Model Server accepts 1-32767 only"),
        (["--management-port", "32768"], "--management-port 32768: Multi Model Server accepts 1-32767 only"),
        (["--register", "http://example.com/x.mar"], "--register: refusing to register 'http://example.com/x.mar'"),
        (["--register", "../registry/mlp/1/model.json"], "only .mar files inside the model store"),
        (["--model-option", "mlp:batchsize=8"], "unknown model option 'batchsize'"),
        (["--model-option", "mlp:batch_size=many"], "model option batch_size needs an integer"),
        (["--model-option", "batch_size=8"], "expected NAME:KEY=VALUE"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--max-batch-delay", "-5"], "--max-batch-delay must be at least 0 ms"),
        (
            ["--cors-origin", "http://a.test", "--cors-origin", "http://b.test"],
            "CORS: Multi Model Server answers every request with one allowed origin, got http://a.test, http://b.test: "
            "allow one origin, or '*' explicitly to allow any",
        ),
        (["--cors-origin", "http://client.test/"], "CORS origin 'http://client.test/' is not scheme://host[:port]"),
        (["--host", "127.0.0.1\nmanagement_address=http://0.0.0.0:1"], "host '127.0.0.1\\nmanagement_address"),
        (["--management-host", "a b"], "management host 'a b' is not a host name"),
    ],
)
def test_serve_rejects_bad_options_with_one_line(stores, capsys, extra, fragment):
    registry, store = stores
    code = cli(["serve", "--model-store", str(store), "--registry", str(registry), *extra])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_archive_rejects_an_unknown_engine(stores, capsys):
    registry, store = stores
    with pytest.raises(SystemExit) as caught:
        cli(["archive", str(registry / "mlp" / "1"), "--out", str(store), "--engine", "tensorrt"])
    assert caught.value.code == 2 and "invalid choice: 'tensorrt'" in capsys.readouterr().err


def test_edgecloud_serve_applies_batching_workers_cors_and_stops_clean(stores):
    registry, store = stores
    inference, management, web = free_port(), free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "edgecloud",
        "serve",
        "--model-store",
        str(store),
        "--registry",
        str(registry),
        "--inference-port",
        str(inference),
        "--management-port",
        str(management),
        "--web-port",
        str(web),
        "--workers",
        "2",
        "--batch-size",
        "4",
        "--max-batch-delay",
        "20",
        "--model-option",
        "mlp:batch_size=8",
        "--model-option",
        "pair:workers=1",
        "--register",
        "mlp.mar",
        "--register",
        "pair.mar",
    ]
    serve = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in serve.stdout:
            if line.startswith("Press Ctrl-C"):
                break
        else:
            pytest.fail(f"edgecloud serve ended early: {serve.stderr.read()}")
        describe = lambda name: json.loads(urllib.request.urlopen(f"http://127.0.0.1:{management}/models/{name}").read())  # noqa: E731
        # Each model runs as its registry version's MMS model, NAME-vN (docs/versions.md), with its own options.
        mlp, pair = describe("mlp-v1"), describe("pair-v1")
        assert (mlp["batchSize"], mlp["maxBatchDelay"], len(mlp["workers"])) == (8, 20, 2)
        assert (pair["batchSize"], len(pair["workers"])) == (4, 1)
        models_listed = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{management}/models").read())["models"]
        assert sorted(m["modelName"] for m in models_listed) == ["mlp-v1", "pair-v1"]  # not mlpmx/nomx: --register chose
        x = np.ones((1, 4), np.float32)
        _, headers = predict(f"http://127.0.0.1:{inference}", "mlp", x, {"Origin": "http://client.test"})
        # MMS allows the page's origin only, whoever asks (the browser enforces it).
        assert headers.get("Access-Control-Allow-Origin") == f"http://127.0.0.1:{web}"
        mms_pids = _group_of(_launcher_pid(serve.pid))
        assert len(mms_pids) >= 4  # launcher, java, 2 + 1 workers
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
    assert serve.returncode == 0
    deadline = time.monotonic() + 10
    while alive(mms_pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(mms_pids) == []


def _launcher_pid(serve: int) -> int:
    """The `mms.model_server` launcher `serve` started (its pid is its process group)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if b"mms.model_server" in command and parent == serve:
                return int(entry.name)
    raise AssertionError("no MMS launcher found for serve")


def _group_of(pgid: int) -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and _pgid(e) == pgid]


def _pgid(entry: Path) -> int | None:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None
