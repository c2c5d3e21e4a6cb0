"""RegistryPublisher, on a real registry folder: what a round's close leaves when a closer before it
stopped midway (killed, or its database connection, and so its claim, lost)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecloud.federation import RegistryPublisher, RoundLost, load_model
from export.federated_version import trainable_parameters, write_federated_version
from registry import Registry
from tests.builders import write_trainable_version_dir


def HELD() -> bool:  # noqa: N802 - a constant-like callable
    return True


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    write_trainable_version_dir(tmp_path / "registry" / "mlp" / "1")
    Registry(tmp_path / "registry").set_latest("mlp", 1)
    return tmp_path / "registry"


def parameters(registry: Path, shift: float) -> dict[str, np.ndarray]:
    return {name: value + np.float32(shift) for name, value in trainable_parameters(registry / "mlp" / "1").items()}


def provenance(clients: int, samples: int) -> dict:
    return {"round": 1, "base_version": "1", "clients": clients, "samples": samples, "aggregation": "fedavg"}


def values(registry: Path, version: int) -> dict[str, np.ndarray]:
    return trainable_parameters(Registry(registry).version_dir("mlp", version))


def test_a_version_written_from_the_same_updates_is_published_not_written_again(registry: Path) -> None:
    write_federated_version(registry / "mlp", "1", parameters(registry, 0.5), provenance(2, 5))  # killed before latest.json
    (registry / "mlp" / ".staging-3").mkdir()  # and a half-written one after it
    produced = RegistryPublisher(registry).publish(load_model(registry, "mlp"), parameters(registry, 0.5), provenance(2, 5), HELD)
    assert (produced.version, Registry(registry).versions("mlp"), Registry(registry).latest("mlp")) == ("2", [1, 2], 2)
    assert not (registry / "mlp" / ".staging-3").exists()


def test_an_unpublished_version_from_fewer_updates_is_written_again_under_its_number(registry: Path) -> None:
    write_federated_version(registry / "mlp", "1", parameters(registry, 0.5), provenance(2, 5))
    produced = RegistryPublisher(registry).publish(load_model(registry, "mlp"), parameters(registry, 0.25), provenance(3, 9), HELD)
    assert (produced.version, Registry(registry).versions("mlp")) == ("2", [1, 2])
    assert np.array_equal(values(registry, 2)["head.bias"], parameters(registry, 0.25)["head.bias"])


def test_a_published_version_from_fewer_updates_is_superseded_by_the_next(registry: Path) -> None:
    publisher = RegistryPublisher(registry)
    base = load_model(registry, "mlp")
    publisher.publish(base, parameters(registry, 0.5), provenance(2, 5), HELD)  # the closer lost its claim after this
    produced = publisher.publish(base, parameters(registry, 0.25), provenance(3, 9), HELD)  # the round, closed with every update
    assert (produced.version, Registry(registry).versions("mlp"), Registry(registry).latest("mlp")) == ("3", [1, 2, 3], 3)
    assert np.array_equal(values(registry, 3)["head.bias"], parameters(registry, 0.25)["head.bias"])
    assert np.array_equal(values(registry, 2)["head.bias"], parameters(registry, 0.5)["head.bias"])  # kept: pages may run it


def test_a_closer_that_lost_the_round_moves_nothing_and_the_next_one_finishes(registry: Path) -> None:
    publisher = RegistryPublisher(registry)
    with pytest.raises(RoundLost, match="stays unpublished"):
        publisher.publish(load_model(registry, "mlp"), parameters(registry, 0.5), provenance(2, 5), lambda: False)
    assert (Registry(registry).versions("mlp"), Registry(registry).latest("mlp")) == ([1, 2], 1)
    produced = publisher.publish(load_model(registry, "mlp"), parameters(registry, 0.5), provenance(2, 5), HELD)
    assert (produced.version, Registry(registry).versions("mlp"), Registry(registry).latest("mlp")) == ("2", [1, 2], 2)


def test_a_version_beyond_latest_from_another_writer_is_cleared(registry: Path) -> None:
    write_federated_version(registry / "mlp", "1", parameters(registry, 0.5), {**provenance(2, 5), "round": 99})
    produced = RegistryPublisher(registry).publish(load_model(registry, "mlp"), parameters(registry, 0.25), provenance(3, 9), HELD)
    assert (produced.version, Registry(registry).versions("mlp")) == ("2", [1, 2])
    assert Registry(registry).manifest("mlp", 2)["federated"]["round"] == 1
