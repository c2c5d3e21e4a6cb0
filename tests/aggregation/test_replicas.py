"""Several FederatedService instances on one store, as replicas on one PostgreSQL are (here an
in-memory store shared in one process: its claims are the store's): one closes each round, the
others follow; a replica starting reads the registry again before it records anything."""

from __future__ import annotations

import numpy as np
import pytest

from aggregation.http import parse_update
from aggregation.service import FederatedModel, FederatedService, Refused
from aggregation.settings import FederatedSettings
from aggregation.store import MemoryStore, StoredUpdate
from tests.aggregation.test_http import BASE, SPEC, Clock, body


class Registry:
    """Versions by number and the one `latest` names; publishing moves it, as RegistryPublisher does."""

    def __init__(self) -> None:
        self.versions = {"1": FederatedModel("mlp", "1", SPEC, BASE)}
        self.latest = "1"
        self.published: list[tuple[str, int]] = []

    def load(self, name: str, version: str | None) -> FederatedModel:
        return self.versions[version or self.latest]

    def publish(self, model, parameters, provenance, held) -> FederatedModel:
        version = str(max(map(int, self.versions)) + 1)
        self.versions[version] = FederatedModel("mlp", version, SPEC, parameters, provenance["round"], provenance["clients"])
        self.latest = version
        self.published.append((version, provenance["clients"]))
        return self.versions[version]


def replica(store: MemoryStore, registry: Registry, model: FederatedModel | None = None) -> FederatedService:
    return FederatedService(
        store, FederatedSettings(min_clients=2), [model or registry.load("mlp", None)], registry, clock=Clock(), loader=registry.load
    )


def test_one_replica_closes_the_round_and_the_other_follows() -> None:
    store, registry = MemoryStore(), Registry()
    a, b = replica(store, registry), replica(store, registry)
    a.submit("mlp", parse_update(body("client-0001")))
    b.submit("mlp", parse_update(body("client-0002")))
    a.tick()
    b.tick()
    assert registry.published == [("2", 2)]
    assert b.describe("mlp")["base_version"] == "2"
    assert b.submit("mlp", parse_update(body("client-0001", base="2")))["round"] == 2  # b took the new base
    assert [(r.base_version, r.new_version) for r in store.rounds("mlp")] == [("1", "2"), ("2", None)]


def test_a_starting_replica_reads_the_registry_again_before_closing_anything() -> None:
    store, registry = MemoryStore(), Registry()
    stale = registry.load("mlp", None)  # read before the other replica's close
    a = replica(store, registry)
    a.submit("mlp", parse_update(body("client-0001")))
    a.submit("mlp", parse_update(body("client-0002")))
    a.tick()
    b = replica(store, registry, model=stale)
    assert [(r.base_version, r.new_version) for r in store.rounds("mlp")] == [("1", "2"), ("2", None)]
    assert b.describe("mlp")["base_version"] == "2"


def test_a_version_published_from_fewer_updates_is_not_recorded_as_the_round() -> None:
    store, registry = MemoryStore(), Registry()
    first = store.open_round("mlp", "1", now=1.0)
    for i in range(3):
        delta = {"head.weight": np.full((2, 3), 0.5 * i, np.float32), "head.bias": np.zeros(2, np.float32)}
        store.add_update(first.id, StoredUpdate(f"client-000{i}", 1, delta, 1.0, False, 1.0))
    # A closer published version 2 from two of them, then was killed before recording the close.
    registry.versions["2"] = FederatedModel("mlp", "2", SPEC, BASE, produced_by_round=first.id, produced_from=2)
    registry.latest = "2"
    service = replica(store, registry)
    assert store.current_round("mlp").id == first.id  # not recorded as closed by version 2
    service.tick()
    assert registry.published == [("3", 3)]  # the round's aggregate, from all three
    assert [(r.base_version, r.new_version) for r in store.rounds("mlp")] == [("1", "3"), ("3", None)]


def test_an_update_on_the_version_being_published_is_round_closing_on_every_replica() -> None:
    """Publishing moves latest.json before the round's close is recorded: a page that saw the new version
    and sent at once is told to send again soon (not that its version is unknown), by the closer and the rest."""
    store, registry = MemoryStore(), Registry()
    a, b = replica(store, registry), replica(store, registry)
    answers: dict[str, Refused] = {}
    publish = registry.publish

    def publish_and_send(model, parameters, provenance, held):
        published = publish(model, parameters, provenance, held)
        for name, service in (("closer", a), ("other", b)):
            with pytest.raises(Refused) as refused:
                service.submit("mlp", parse_update(body("client-0003", base=published.version)))
            answers[name] = refused.value
        return published

    registry.publish = publish_and_send
    a.submit("mlp", parse_update(body("client-0001")))
    a.submit("mlp", parse_update(body("client-0002")))
    a.tick()
    assert {name: (r.status, r.code) for name, r in answers.items()} == {"closer": (409, "round-closing"), "other": (409, "round-closing")}
    assert b.submit("mlp", parse_update(body("client-0003", base="2")))["round"] == 2  # once recorded, taken
    with pytest.raises(Refused) as refused:
        b.submit("mlp", parse_update(body("client-0004", base="4")))
    assert refused.value.code == "stale-base"  # a version nobody published is refused as before
