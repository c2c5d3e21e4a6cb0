"""`edgecloud serve --replicas 2`: HAProxy in front of two real replicas, under load at c=32.

A replica SIGKILLed (its process and its MMS) and one SIGTERMed: no request fails (HAProxy retries
the dropped ones on the other replica), each comes back and takes traffic again. Also: the
registry and page behind the same gateway, /metrics federated and matching the traffic sent.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from benchmarks.gateway import V2_BODY, fault_under_load
from edgecloud.gateway.haproxy import GatewayLayout, haproxy_config
from edgecloud.gateway.stack import GatewayOptions, GatewayStack
from mms_handlers.archive import build_archive
from mms_handlers.server import ServerConfig
from mms_handlers.settings import ServingSettings
from tests import kserve_sdk
from tests.conftest import consecutive_free_ports, free_port
from tests.mms_handlers import models

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("gateway")
    build_archive(models.mlp(root / "registry"), root / "store")
    base = consecutive_free_ports(4)  # the replicas' MMS ports are derived: base, base+1, base+2, base+3
    server = ServerConfig(model_store=root / "store", inference_port=base, management_port=base + 1, java_heap_mb=256)
    gateway_port = consecutive_free_ports(3)  # the replicas' front doors are derived: gateway + 1, gateway + 2
    options = GatewayOptions(
        server=server,
        registry=root / "registry",
        replicas=2,
        gateway_port=gateway_port,
        web_port=free_port(),
        settings=ServingSettings(drain_seconds=3.0),
    )
    stack = GatewayStack(options, runtime_dir=root / "run").start()
    yield stack
    stack.stop()


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def metric_sum(text: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def test_registry_page_and_federated_metrics_behind_the_gateway(stack):
    with urllib.request.urlopen(f"{stack.url}/models/mlp/1/model.json", timeout=10) as response:
        assert json.loads(response.read())["name"] == "mlp" and "immutable" in response.headers["Cache-Control"]
    with urllib.request.urlopen(f"{stack.url}/config.json", timeout=10) as response:
        assert json.loads(response.read())["cloud"] == stack.url
    read = lambda: urllib.request.urlopen(f"{stack.url}/metrics", timeout=10).read().decode()  # noqa: E731
    before = metric_sum(read(), "edgecloud_requests_total")
    for _ in range(20):
        assert post(f"{stack.url}/v2/models/mlp/infer", V2_BODY) == 200
    text = read()
    assert metric_sum(text, "edgecloud_requests_total") - before == 20
    assert 'replica="0"' in text and 'replica="1"' in text and metric_sum(text, "edgecloud_replica_up") == 2
    gateway = urllib.request.urlopen(f"{stack.url}/metrics/gateway", timeout=10).read().decode()
    assert "haproxy_backend_http_responses_total" in gateway


def test_kserve_and_triton_clients_infer_through_the_gateway_unchanged(stack):
    import numpy as np
    import tritonclient.http as triton

    x = np.random.default_rng(11).standard_normal((5, 4)).astype(np.float32)
    code, printed = kserve_sdk.run("rest_probe.py", {"url": stack.url, "model": "mlp", "inputs": {"x": x.tolist()}})
    assert code == 0, printed
    report = json.loads(printed)
    assert report["live"] is True and report["ready"] is True and report["model_ready"] is True
    assert report["outputs"]["y"]["shape"] == [5, 3]
    np.testing.assert_allclose(np.array(report["outputs"]["y"]["data"]), models.mlp_reference(x), atol=1e-6)
    code, printed = kserve_sdk.run("rest_probe.py", {"url": stack.url, "model": "nope", "inputs": {"x": x.tolist()}})
    assert code == 1 and json.loads(printed)["status"] == 404

    client = triton.InferenceServerClient(stack.url.removeprefix("http://"))
    assert client.is_server_ready() and client.is_model_ready("mlp")
    tensor = triton.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=False)
    result = client.infer("mlp", [tensor], outputs=[triton.InferRequestedOutput("y", binary_data=False)])
    np.testing.assert_allclose(result.as_numpy("y"), models.mlp_reference(x), atol=1e-6)


@pytest.mark.parametrize("mode, index", [("kill", 0), ("term", 1)])
def test_a_replica_lost_under_load_fails_no_request_and_comes_back(stack, mode, index):
    report = fault_under_load(stack, index, mode, concurrency=32)
    assert len(report.outcomes) > 200, "the load never got going"
    # The only failures a balancer cannot retry: answers the killed replica had begun to send (HAProxy
    # passed them on, then the connection broke). They were in flight at the kill; a drain has none.
    unretryable = [
        o
        for o in report.failures
        if mode == "kill"
        and o.status in ("IncompleteRead", "RemoteDisconnected")
        and o.started <= report.hit_at <= o.finished <= report.hit_at + 5.0
    ]
    failed = [(o.status, o.body[:120]) for o in report.failures if o not in unretryable]
    assert failed == [], f"{len(failed)} of {len(report.outcomes)} requests failed after the {mode}: {failed[:5]}"
    assert len(unretryable) <= 32, f"{len(unretryable)} answers cut off: more than were in flight"
    print(f"\n{mode}: {len(report.outcomes)} requests, {len(unretryable)} cut off mid-answer, back after {report.back_after_s} s")
    assert report.answered_by_returned > 0, f"replica {index} came back after {report.back_after_s} s but took no traffic"


def test_example_config_in_deploy_is_what_the_gateway_writes():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"
    layout = GatewayLayout("0.0.0.0", 8000, (8101, 8102), 8090, 8091)
    assert example.read_text() == haproxy_config(layout)
