"""Readiness rules and OIP V2 path parsing, without MMS."""

from __future__ import annotations

from mms_handlers.replica.health import readiness, ready_workers
from mms_handlers.replica.oip import Route, parse_model_path

READY = [{"modelName": "mlp", "workers": [{"id": "9000", "status": "READY"}]}]
LOADING = [{"modelName": "mlp", "workers": [{"id": "9000", "status": "UNLOADING"}]}]
UNKNOWN = {"code": 404, "type": "ModelNotFoundException", "message": "Model not found: mlp"}


def check(descriptions, backends=("mlp",), **flags):
    state = {"mms_running": True, "loading": False, "draining": False} | flags
    return readiness(["mlp"], descriptions, backends, **state)


def test_ready_only_when_every_rule_holds():
    assert check({"mlp": READY}).ok
    for health in (
        check({"mlp": READY}, loading=True),
        check({"mlp": READY}, draining=True),
        check({"mlp": READY}, mms_running=False),
        check({"mlp": LOADING}),
        check({"mlp": UNKNOWN}),
        check({}),
        check({"mlp": READY}, backends=()),
    ):
        assert not health.ok and health.reasons


def test_each_reason_names_its_cause():
    assert "loaded" in check({"mlp": READY}, loading=True).reasons[0]
    assert "draining" in check({"mlp": READY}, draining=True).reasons[0]
    assert "backend process is dead" in check({"mlp": READY}, backends=()).reasons[0]
    assert "no READY worker" in check({"mlp": LOADING}).reasons[0]
    assert "not registered" in check({"mlp": UNKNOWN}).reasons[0]


def test_ready_workers_counts_only_ready_ones():
    two = [{"workers": [{"status": "READY"}, {"status": "READY"}, {"status": "UNLOADING"}]}]
    assert ready_workers(two) == 2 and ready_workers(UNKNOWN) == 0 and ready_workers(None) == 0


def test_v2_model_paths():
    assert parse_model_path("/v2/models/mlp") == Route("mlp", None, "metadata")
    assert parse_model_path("/v2/models/mlp/ready") == Route("mlp", None, "ready")
    assert parse_model_path("/v2/models/mlp/versions/3/infer") == Route("mlp", "3", "infer")
    assert parse_model_path("/v2/models/mlp/versions/3") == Route("mlp", "3", "metadata")
    for other in ("/v2/models", "/v2/models/", "/v2/models/mlp/explain", "/v2/models/a/b/c", "/predictions/mlp"):
        assert parse_model_path(other) is None
