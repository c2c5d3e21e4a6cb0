"""Buffered (FedBuff) rounds: stale updates within the bound count with their documented weight,
older ones are refused naming the versions; exact arithmetic on integer-valued arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aggregation.fedavg import Contribution, aggregate
from aggregation.service import FederatedModel, FederatedService, ParameterSpec, Refused, Update
from aggregation.settings import FederatedSettings, SettingError
from aggregation.store import MemoryStore

SPEC = (ParameterSpec("w", (2, 2)),)
BASE = {"w": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)}


class Publisher:
    def __init__(self) -> None:
        self.published: list[tuple[dict, dict]] = []

    def publish(self, model: FederatedModel, parameters, provenance, held) -> FederatedModel:
        self.published.append((parameters, provenance))
        return FederatedModel(model.name, str(int(model.version) + 1), model.parameters, parameters, provenance["round"])


def buffered(buffer: int = 2, **settings) -> tuple[FederatedService, Publisher]:
    publisher = Publisher()
    options = FederatedSettings(rounds="buffered", buffer=buffer, max_norm=1e6, **settings)
    return FederatedService(MemoryStore(), options, [FederatedModel("m", "1", SPEC, BASE)], publisher), publisher


def send(service: FederatedService, client: str, base: str, value: float, samples: int = 1) -> dict:
    return service.submit("m", Update(f"client-{client}", base, samples, {"w": np.full((2, 2), value)}))


def advance(service: FederatedService, to_version: str) -> None:
    """Close rounds with fresh zero updates until `to_version` is the current version."""
    while service.describe("m")["base_version"] != to_version:
        base = service.describe("m")["base_version"]
        for i in range(service.settings.close_at):
            send(service, f"fill-{base}-{i}", base, 0.0)
        service.tick()


def test_weight_scales_the_delta_and_fedavg_divides_by_the_samples_alone() -> None:
    contributions = [Contribution({"w": np.full((2, 2), 4.0)}, 1), Contribution({"w": np.full((2, 2), 8.0)}, 3, weight=0.5)]
    # (1·1·4 + 3·0.5·8) / (1 + 3) = 4, not / (1 + 1.5)
    assert np.array_equal(aggregate(BASE, contributions)["w"], BASE["w"] + 4)


def test_an_update_on_version_n_minus_1_counts_half_with_exponent_1_exactly() -> None:
    service, publisher = buffered(max_staleness=2, staleness_exponent=1.0)
    advance(service, "2")
    base_2 = publisher.published[-1][0]["w"]
    fresh = send(service, "fresh0001", "2", 4.0, samples=1)
    stale = send(service, "stale0001", "1", 8.0, samples=3)  # computed on version 1, applied to version 2
    assert (fresh["staleness"], fresh["weight"]) == (0, 1.0) and (stale["staleness"], stale["weight"]) == (1, 0.5)
    service.tick()
    parameters, provenance = publisher.published[-1]
    assert np.array_equal(parameters["w"], base_2 + 4)  # (1·4 + 3·0.5·8) / 4
    assert provenance["base_version"] == "2" and provenance["buffered"]["staleness"] == [0, 1]
    kept = service.store.updates(provenance["round"])
    assert [(u.base_version, u.staleness, u.weight) for u in kept] == [("2", 0, 1.0), ("1", 1, 0.5)]


def test_the_default_rule_is_one_over_sqrt_of_one_plus_staleness() -> None:
    service, publisher = buffered(buffer=3, max_staleness=3)
    advance(service, "4")
    before = publisher.published[-1][0]["w"]
    assert send(service, "behind001", "3", 0.0)["weight"] == pytest.approx(1 / math.sqrt(2), rel=1e-15)  # N-1
    assert send(service, "behind003", "1", 8.0, samples=1)["weight"] == 0.5  # N-3: (1 + 3) ** -0.5
    send(service, "fresh0001", "4", 4.0, samples=2)
    service.tick()
    # (1·(1/√2)·0 + 1·0.5·8 + 2·1·4) / 4 = 3, exact
    assert np.array_equal(publisher.published[-1][0]["w"], before + 3)


def test_older_than_the_bound_and_unknown_versions_are_409_naming_the_versions() -> None:
    service, _publisher = buffered(max_staleness=1)
    advance(service, "3")
    with pytest.raises(Refused) as refused:
        send(service, "late0001", "1", 1.0)
    assert (refused.value.status, refused.value.code) == (409, "stale-base")
    assert "base version 1 is 2 versions behind the current 3" in refused.value.message
    assert "versions 2 to 3" in refused.value.message
    with pytest.raises(Refused) as refused:
        send(service, "ahead0001", "4", 1.0)
    assert (refused.value.status, refused.value.code) == (409, "unknown-base")
    assert [r.reason.split(":")[0] for r in service.store.refusals("m")] == ["stale-base", "unknown-base"]
    assert service.store.current_round("m").clients == 0
    assert service.describe("m")["oldest_base_version"] == "2"


def test_synchronous_rounds_stay_the_default_and_take_only_the_current_version() -> None:
    publisher = Publisher()
    service = FederatedService(MemoryStore(), FederatedSettings(min_clients=1), [FederatedModel("m", "1", SPEC, BASE)], publisher)
    advance(service, "2")
    with pytest.raises(Refused) as refused:
        send(service, "late0001", "1", 1.0)
    assert refused.value.code == "stale-base" and service.describe("m")["rounds"] == "synchronous"


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"rounds": "buffered"}, "buffer"),
        ({"rounds": "buffered", "buffer": 0}, "buffer"),
        ({"rounds": "buffered", "buffer": 2, "max_staleness": -1}, "max_staleness"),
        ({"rounds": "buffered", "buffer": 2, "staleness_exponent": -0.5}, "staleness_exponent"),
        ({"buffer": 2}, "buffer"),
        ({"max_staleness": 2}, "max_staleness"),
        ({"staleness_exponent": 1.0}, "staleness_exponent"),
        ({"rounds": "async"}, "rounds"),
        ({"rounds": "buffered", "buffer": 2, "deadline_min_clients": 3}, "deadline_min_clients"),
    ],
)
def test_round_settings_name_the_field_at_fault(settings: dict, field: str) -> None:
    with pytest.raises(SettingError) as raised:
        FederatedSettings(**settings).check()
    assert raised.value.setting == field
