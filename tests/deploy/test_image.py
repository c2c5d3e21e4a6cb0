"""The serving image under podman: runs as non-root with the models read-only, predicts, and on
SIGTERM under load answers every request in flight and exits 0 in time.

Builds with `make image`'s script, cached by content hash, so only the first run builds (~2.5 min).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from benchmarks.load_client import ClosedLoop
from mms_handlers.archive import build_archive
from tests.conftest import free_port
from tests.mms_handlers import models
from tests.mms_handlers.replica.rollout import ask, publish, wait_for_version

pytestmark = [pytest.mark.integration, pytest.mark.container]
REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "container" / "containers.conf"
DRAIN_S = 3.0
EXIT_LIMIT_S = DRAIN_S + 20.0  # drain, then MMS's own stop; Kubernetes' grace period covers the same


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CONTAINERS_CONF=str(CONF))
    return subprocess.run(
        ["podman", "--runtime", "/usr/sbin/runc", *args], env=env, capture_output=True, text=True, check=check, timeout=timeout
    )


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: `make system` installs it (APT_PACKAGES)")
    env = dict(os.environ, PYTHON=os.environ.get("PYTHON", str(Path(os.sys.executable))))
    built = subprocess.run([str(REPO / "deploy" / "container" / "build-image.sh")], env=env, capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr[-2000:]
    return built.stdout.strip().splitlines()[-1]


def wait_ready(base: str, container: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{base}/v2/health/ready", timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the container never got ready: {podman('logs', container, check=False).stderr[-1500:]}")


def test_image_watching_a_mounted_registry_follows_a_new_version(image, tmp_path):
    registry = tmp_path / "registry"
    publish(registry, "plus", 1)
    port = free_port()
    run = podman(
        "run",
        "-d",
        "--network",
        "host",
        "-v",
        f"{registry}:/models/registry:ro",
        "-e",
        "EDGECLOUD_REGISTRY=/models/registry",
        "-e",
        f"EDGECLOUD_PORT={port}",
        "-e",
        f"EDGECLOUD_MMS_INFERENCE_PORT={free_port()}",
        "-e",
        f"EDGECLOUD_MMS_MANAGEMENT_PORT={free_port()}",
        "-e",
        "EDGECLOUD_JAVA_HEAP=256",
        "-e",
        "EDGECLOUD_DRAIN_SECONDS=0",
        image,
    )
    container = run.stdout.strip()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, container)
        assert ask(base, "/predictions/plus").version == 1
        publish(registry, "plus", 2)  # written on the host, into the volume the container reads
        wait_for_version(base, ["/predictions/plus", "/v2/models/plus/infer"], 2)
        pinned = ask(base, "/v2/models/plus/versions/1/infer")
        assert (pinned.status, pinned.version, pinned.model_version) == (200, 1, "1")
        assert "plus now answers with version 2" in podman("logs", container).stderr
    finally:
        podman("rm", "-f", container, check=False)


def test_image_predicts_and_drains_on_sigterm(image, tmp_path):
    build_archive(models.mlp(tmp_path / "registry"), tmp_path / "store")
    port = free_port()
    run = podman(
        "run",
        "-d",
        "--network",
        "host",
        "-v",
        f"{tmp_path / 'store'}:/models:ro",
        "-e",
        f"EDGECLOUD_PORT={port}",
        "-e",
        f"EDGECLOUD_MMS_INFERENCE_PORT={free_port()}",
        "-e",
        f"EDGECLOUD_MMS_MANAGEMENT_PORT={free_port()}",
        "-e",
        "EDGECLOUD_JAVA_HEAP=256",
        "-e",
        f"EDGECLOUD_DRAIN_SECONDS={DRAIN_S}",
        image,
    )
    container = run.stdout.strip()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, container)
        assert podman("inspect", container, "--format", "{{.Config.User}}").stdout.strip() == "10001:10001"
        assert podman("exec", container, "id", "-u").stdout.strip() == "10001"
        assert podman("exec", container, "touch", "/models/x", check=False).returncode != 0  # mounted read-only
        x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
        request = urllib.request.Request(f"{base}/predictions/mlp", json.dumps(x.tolist()).encode(), {"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=10).read())
        np.testing.assert_allclose(np.array(answer["outputs"]["y"]), models.mlp_reference(x), atol=1e-6)

        loop = ClosedLoop(f"{base}/predictions/mlp", json.dumps([[1, 2, 3, 4]]).encode(), 16, timeout_s=30).start()
        time.sleep(1.5)
        signalled = time.monotonic()
        podman("kill", "--signal", "TERM", container)
        time.sleep(DRAIN_S / 2)  # requests keep arriving while the replica drains
        outcomes = loop.stop()
        podman("wait", container, timeout=EXIT_LIMIT_S + 10)
        exited_after = time.monotonic() - signalled
        in_flight_at_signal = [o for o in outcomes if o.started < signalled < o.finished]
        failed = [(o.status, o.body[:100]) for o in outcomes if not o.ok]
        assert failed == [], f"{len(failed)} of {len(outcomes)} requests failed around SIGTERM: {failed[:5]}"
        assert in_flight_at_signal, "no request was in flight when SIGTERM came: the test proved nothing"
        assert exited_after < EXIT_LIMIT_S
        state = podman("inspect", container, "--format", "{{.State.ExitCode}}").stdout.strip()
        assert state == "0", podman("logs", container, check=False).stderr[-1500:]
        assert "draining" in podman("logs", container).stderr
    finally:
        podman("rm", "-f", container, check=False)


def test_image_runs_the_aggregator_with_its_own_entrypoint(image, tmp_path):
    """The aggregator's entrypoint: non-root, takes an update, writes version 2 into the mounted
    registry (as the Kubernetes Deployment mounts it), drains and exits 0 on SIGTERM."""
    from registry import Registry
    from tests.builders import write_trainable_version_dir

    registry = tmp_path / "registry"
    write_trainable_version_dir(registry / "mlp" / "1")
    Registry(registry).set_latest("mlp", 1)
    for path in [registry, *registry.rglob("*")]:
        os.chown(path, 10001, 10001)
    tmp_path.chmod(0o755)
    port = free_port()
    run = podman(
        "run",
        "-d",
        "--network",
        "host",
        "-v",
        f"{registry}:/registry",
        "--entrypoint",
        "/usr/local/bin/edgecloud-aggregate",
        image,
        "--registry",
        "/registry",
        "--federated",
        "mlp",
        "--port",
        str(port),
        "--database",
        "/tmp/rounds.sqlite",
        "--min-clients",
        "1",
        "--drain-seconds",
        "1",
    )
    container = run.stdout.strip()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{base}/ready", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"the aggregator never got ready: {podman('logs', container, check=False).stderr[-1500:]}")
        assert podman("exec", container, "id", "-u").stdout.strip() == "10001"
        delta = {"head.weight": {"shape": [8, 2], "data": [0.1] * 16}, "head.bias": {"shape": [2], "data": [0.2, 0.2]}}
        body = json.dumps({"client": "client-image-0001", "base_version": "1", "samples": 2, "delta": delta}).encode()
        request = urllib.request.Request(f"{base}/federated/mlp/updates", body, {"Content-Type": "application/json"})
        assert json.loads(urllib.request.urlopen(request, timeout=30).read())["accepted"] is True
        for _ in range(300):
            if json.loads((registry / "mlp" / "latest.json").read_text())["version"] == "2":
                break
            time.sleep(0.2)
        assert json.loads((registry / "mlp" / "latest.json").read_text())["version"] == "2"
        assert (registry / "mlp" / "2").stat().st_uid == 10001
        podman("kill", "--signal", "TERM", container)
        podman("wait", container, timeout=60)
        assert podman("inspect", container, "--format", "{{.State.ExitCode}}").stdout.strip() == "0"
        assert "draining" in podman("logs", container).stderr
    finally:
        podman("rm", "-f", container, check=False)
