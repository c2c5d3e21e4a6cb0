"""The aggregator's HTTP answers and round rules, on a real service over an in-memory store
with a recording publisher (no ONNX files, no MMS: those are edgecloud's, tested there)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aggregation.http import FederatedApi, parse_update
from aggregation.service import FederatedModel, FederatedService, ParameterSpec
from aggregation.settings import FederatedSettings, SettingError
from aggregation.store import MemoryStore

SPEC = (ParameterSpec("head.weight", (2, 3)), ParameterSpec("head.bias", (2,)))
BASE = {"head.weight": np.zeros((2, 3), np.float32), "head.bias": np.ones(2, np.float32)}


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[tuple[dict, dict]] = []

    def publish(self, model: FederatedModel, parameters, provenance, held) -> FederatedModel:
        self.published.append((parameters, provenance))
        return FederatedModel(model.name, str(int(model.version) + 1), model.parameters, parameters, provenance["round"])


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def body(client: str = "client-0001", base: str = "1", samples: int = 4, weight=None, bias=None) -> bytes:
    weight = np.full((2, 3), 0.5) if weight is None else weight
    bias = np.array([1.0, -1.0]) if bias is None else bias
    delta = {
        "head.weight": {"shape": list(np.shape(weight)), "data": np.ravel(weight).tolist()},
        "head.bias": {"shape": [2], "data": list(bias)},
    }
    return json.dumps({"client": client, "base_version": base, "samples": samples, "delta": delta}).encode()


@pytest.fixture
def world():
    store, publisher, clock = MemoryStore(), RecordingPublisher(), Clock()
    settings = FederatedSettings(min_clients=2, max_norm=50.0, round_deadline=60.0, max_body_bytes=4096)
    service = FederatedService(store, settings, [FederatedModel("mlp", "1", SPEC, BASE)], publisher, clock=clock)
    api = FederatedApi(service)

    def post(raw: bytes, path: str = "/federated/mlp/updates", length: int | None = -1):
        return api.handle("POST", path, len(raw) if length == -1 else length, lambda n: raw[:n])

    return api, service, publisher, clock, post


def test_two_updates_close_the_round_into_the_fedavg_version(world) -> None:
    api, service, publisher, _clock, post = world
    status, answer = post(body("client-0001", samples=1, weight=np.full((2, 3), 4.0)))
    assert (status, answer["accepted"], answer["round"]) == (200, True, 1)
    service.tick()
    assert publisher.published == []  # one of two
    assert post(body("client-0002", samples=3, weight=np.zeros((2, 3))))[0] == 200
    # Full: no third before the close.
    assert post(body("client-0003"))[1]["error"] == "round-closing"
    service.tick()
    parameters, provenance = publisher.published[0]
    assert np.array_equal(parameters["head.weight"], np.full((2, 3), 1.0, np.float32))  # (1·4 + 3·0) / 4
    assert np.array_equal(parameters["head.bias"], np.array([2.0, 0.0], np.float32))
    assert {k: provenance[k] for k in ("round", "base_version", "clients", "samples", "aggregation", "dp")} == {
        "round": 1,
        "base_version": "1",
        "clients": 2,
        "samples": 4,
        "aggregation": "fedavg",
        "dp": None,
    }
    assert api.handle("GET", "/federated/mlp", None, bytes)[1]["base_version"] == "2"
    status, answer = post(body("client-0001"))
    assert (status, answer["error"]) == (409, "stale-base") and "'2'" in answer["message"]


def test_deadline_closes_a_round_with_the_minimum(world) -> None:
    _api, service, publisher, clock, post = world
    post(body())
    service.tick()
    assert not publisher.published
    clock.now += 61
    service.tick()
    assert publisher.published[0][1]["clients"] == 1


@pytest.mark.parametrize(
    "raw, status, code, words",
    [
        (body(base="7"), 409, "stale-base", "round 1's base '1'"),
        (body(weight=np.zeros((3, 2))), 422, "wrong-shape", "'head.weight' has shape [3, 2], expected [2, 3]"),
        (body(weight=np.array([[np.nan, 0, 0], [0, 0, 0]])), 422, "not-finite", "'head.weight'"),
        (body().replace(b"0.5", b"null", 1), 422, "not-finite", "'head.weight' holds NaN"),  # JSON.stringify(NaN)
        (body(weight=np.full((2, 3), 100.0)), 422, "norm-too-large", "above the bound 50"),
        (body(samples=0), 422, "bad-samples", "positive"),
        (body(client="me"), 400, "bad-client", "8-128"),
        (b"{not json", 400, "bad-json", "not JSON"),
        (body().replace(b"head.bias", b"head.other"), 422, "unknown-parameter", "'head.other'"),
    ],
)
def test_each_bad_update_is_one_4xx_naming_the_problem_and_is_recorded(world, raw, status, code, words) -> None:
    api, service, _publisher, _clock, post = world
    got, answer = post(raw)
    assert (got, answer["error"]) == (status, code) and words in answer["message"], answer
    assert service.store.current_round("mlp").clients == 0
    if code not in ("bad-json", "bad-client"):  # refused by the service: recorded with its reason
        assert code in api.handle("GET", "/federated/mlp/status", None, bytes)[1]["refusals"][0]["reason"]


def test_duplicate_client_is_refused_and_the_first_update_counts(world) -> None:
    _api, service, _publisher, _clock, post = world
    post(body("client-0001", weight=np.full((2, 3), 1.0)))
    status, answer = post(body("client-0001", weight=np.full((2, 3), 2.0)))
    assert (status, answer["error"]) == (409, "duplicate-client")
    assert service.store.updates(1)[0].delta["head.weight"][0, 0] == 1.0


def test_oversized_body_is_refused_before_it_is_read(world) -> None:
    api, *_ = world
    read = []
    status, answer = api.handle("POST", "/federated/mlp/updates", 10**9, lambda n: read.append(n) or b"")
    assert (status, answer["error"], read) == (413, "too-large", [])
    assert api.handle("POST", "/federated/mlp/updates", None, bytes)[0] == 411


def test_unknown_model_and_path_are_404(world) -> None:
    api, *_ = world
    assert api.handle("POST", "/federated/nope/updates", 10, bytes)[1]["error"] == "unknown-model"
    assert api.handle("GET", "/federated/mlp/what", None, bytes)[0] == 404
    assert api.handle("GET", "/federated", None, bytes) == (200, {"models": ["mlp"]})


def test_clipping_scales_down_and_records_it() -> None:
    store, publisher = MemoryStore(), RecordingPublisher()
    service = FederatedService(store, FederatedSettings(min_clients=1, clip=1.0), [FederatedModel("mlp", "1", SPEC, BASE)], publisher)
    status, answer = FederatedApi(service).handle("POST", "/federated/mlp/updates", len(body()), lambda n: body())
    assert (status, answer["clipped"]) == (200, True) and answer["norm"] > 1.0
    assert np.linalg.norm(np.concatenate([v.ravel() for v in store.updates(1)[0].delta.values()])) == pytest.approx(1.0, rel=1e-6)
    service.tick()
    assert publisher.published[0][1]["clip"]["clipped"] == 1


def test_restart_resumes_the_round_and_records_a_close_that_was_published() -> None:
    store, publisher = MemoryStore(), RecordingPublisher()
    model = FederatedModel("mlp", "1", SPEC, BASE)
    FederatedService(store, FederatedSettings(min_clients=3), [model], publisher)  # opens round 1
    service = FederatedService(store, FederatedSettings(min_clients=3), [model], publisher)
    assert service.describe("mlp")["round"] == 1
    # Stopped after version 2 was published by round 1 but before the close was stored:
    again = FederatedService(store, FederatedSettings(min_clients=3), [FederatedModel("mlp", "2", SPEC, BASE, 1)], publisher)
    assert again.describe("mlp")["base_version"] == "2"
    assert store.rounds("mlp")[0].summary == {"outcome": "published"}


def test_settings_name_the_field_at_fault() -> None:
    with pytest.raises(SettingError) as raised:
        FederatedSettings(dp_noise=1.0).check()
    assert raised.value.setting == "dp_noise"
    with pytest.raises(SettingError, match="aggregation"):
        FederatedSettings(aggregation="mean").check()
    with pytest.raises(SettingError, match="min clients"):
        FederatedSettings(min_clients=2, deadline_min_clients=3).check()


def test_a_failed_close_keeps_every_update_says_why_and_retries_later() -> None:
    class Failing(RecordingPublisher):
        fail = True

        def publish(self, model, parameters, provenance, held):
            if self.fail:
                raise RuntimeError("MMS refused the archive")
            return super().publish(model, parameters, provenance, held)

    store, publisher, clock = MemoryStore(), Failing(), Clock()
    service = FederatedService(store, FederatedSettings(min_clients=1), [FederatedModel("mlp", "1", SPEC, BASE)], publisher, clock=clock)
    service.submit("mlp", parse_update(body()))
    service.tick()
    described = service.describe("mlp")
    assert described["round"] == 1 and described["accepted"] == 1 and "MMS refused the archive" in described["last_error"]
    publisher.fail = False
    service.tick()
    assert publisher.published == []  # not before the retry time
    clock.now += 31
    service.tick()
    assert len(publisher.published) == 1 and service.describe("mlp")["base_version"] == "2"


def test_metrics_count_rounds_updates_and_refusals_by_reason(world) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    api, service, _publisher, _clock, post = world

    def scrape() -> dict[tuple, float]:
        status, text = api.handle("GET", "/federated/metrics", None, bytes)
        assert status == 200 and text.content_type.startswith("text/plain; version=0.0.4")
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text.body.decode())
            for s in f.samples
        }

    mlp = (("model", "mlp"),)
    assert scrape()[("edgecloud_federated_rounds_closed_total", mlp)] == 0
    post(body("client-0001", samples=3))
    post(body("client-0001"))  # duplicate
    post(body("client-0009", base="7"))  # stale
    got = scrape()
    assert got[("edgecloud_federated_open_round_clients", mlp)] == 1
    assert got[("edgecloud_federated_updates_refused_total", (("model", "mlp"), ("reason", "duplicate-client")))] == 1
    assert got[("edgecloud_federated_updates_refused_total", (("model", "mlp"), ("reason", "stale-base")))] == 1
    post(body("client-0002", samples=5))
    service.tick()
    got = scrape()
    assert got[("edgecloud_federated_rounds_closed_total", mlp)] == 1
    assert got[("edgecloud_federated_updates_accepted_total", mlp)] == 2
    assert got[("edgecloud_federated_samples_accepted_total", mlp)] == 8
    assert got[("edgecloud_federated_round", mlp)] == 2 and got[("edgecloud_federated_open_round_clients", mlp)] == 0
