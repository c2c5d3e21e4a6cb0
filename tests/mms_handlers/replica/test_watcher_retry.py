"""The version watcher's rule for failures, against a stand-in MMS (the rule, not MMS: the replica tests
run the real one): a failure on MMS's side is tried again with a growing wait, and the replica is not
ready while a model has no version answering; a failure of the version itself is never tried again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mms_handlers.replica import watcher as watcher_module
from mms_handlers.replica.oip import Catalog
from mms_handlers.replica.watcher import RETRY_FIRST_S, RETRY_MAX_S, VersionWatcher
from mms_handlers.server import ModelLoadError, ServerConfig, ServerError
from registry import Registry
from tests.mms_handlers.replica.rollout import publish

NAME = "plus"


@dataclass
class StandInMms:
    """Registers what it is told, failing the first `failures` registrations with `error`."""

    store: Path
    failures: int = 0
    error: Exception = field(default_factory=lambda: ServerError("registering failed (503): busy"))
    registered: set[str] = field(default_factory=set)
    attempts: int = 0

    def __post_init__(self) -> None:
        self.config = ServerConfig(model_store=self.store)

    def models(self) -> list[dict]:
        return [{"modelName": name} for name in sorted(self.registered)]

    def register(self, mar: str, **_options) -> dict:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        self.registered.add(mar.removesuffix(".mar"))
        return {"status": "ok"}

    def unregister(self, name: str) -> None:
        self.registered.discard(name)

    def describe(self, name: str) -> list[dict]:
        return [{"workers": [{"status": "READY"}]}] if name in self.registered else [{"code": 404}]

    def backend_pids(self) -> dict[str, int]:
        return dict.fromkeys(self.registered, 1)


@dataclass
class Served:
    catalog: Catalog = field(default_factory=Catalog)

    def in_flight_to(self, mms_name: str) -> int:
        return 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(watcher_module.time, "monotonic", clock)
    return clock


def watching(tmp_path: Path, mms: StandInMms) -> tuple[VersionWatcher, Served, list[str]]:
    registry = tmp_path / "registry"
    publish(registry, NAME, 1)
    served, lines = Served(), []
    return VersionWatcher(Registry(registry), mms, served, names=[NAME], log=lines.append), served, lines


def test_a_passing_mms_failure_is_tried_again_and_the_model_is_unserved_meanwhile(tmp_path, clock):
    store = tmp_path / "store"
    store.mkdir()
    mms = StandInMms(store, failures=3)
    watcher, served, lines = watching(tmp_path, mms)
    waits = []
    for _ in range(3):
        watcher.poll()
        assert NAME not in served.catalog.models
        assert watcher.unserved() == [f"{NAME} version 1 not served yet: registering failed (503): busy"]
        waits.append(watcher.retries[(NAME, 1)].wait_s)
        watcher.poll()  # too early: not tried again
        clock.now += waits[-1]
    assert waits == [RETRY_FIRST_S, 2 * RETRY_FIRST_S, 4 * RETRY_FIRST_S] and mms.attempts == 3
    assert len(lines) == 1 and "trying again" in lines[0]  # one line per reason, not per try
    watcher.poll()
    assert served.catalog.models[NAME].version == "1"
    assert watcher.unserved() == [] and watcher.retries == {}


def test_the_wait_between_tries_stops_growing_at_the_cap(tmp_path, clock):
    store = tmp_path / "store"
    store.mkdir()
    watcher, served, _ = watching(tmp_path, StandInMms(store, failures=100))
    for _ in range(12):
        watcher.poll()
        clock.now += watcher.retries[(NAME, 1)].wait_s
    assert watcher.retries[(NAME, 1)].wait_s == RETRY_MAX_S


def test_a_version_that_fails_to_load_is_never_tried_again_and_blocks_no_readiness(tmp_path, clock):
    store = tmp_path / "store"
    store.mkdir()
    mms = StandInMms(store, failures=1, error=ModelLoadError("registering failed (500): ValueError: bad weights"))
    watcher, served, lines = watching(tmp_path, mms)
    watcher.poll()
    clock.now += 3600
    watcher.poll()
    assert mms.attempts == 1 and NAME not in served.catalog.models
    assert watcher.unserved() == []  # the version is the fault: waiting for it would never end
    assert lines == [f"{NAME} version 1 not served: registering failed (500): ValueError: bad weights"]


def test_a_retry_is_dropped_when_latest_json_moves_on(tmp_path, clock):
    store = tmp_path / "store"
    store.mkdir()
    mms = StandInMms(store, failures=1)
    watcher, served, _ = watching(tmp_path, mms)
    watcher.poll()
    assert (NAME, 1) in watcher.retries
    publish(tmp_path / "registry", NAME, 2)
    watcher.poll()  # version 2 is tried at once, whatever version 1's wait
    assert served.catalog.models[NAME].version == "2" and watcher.retries == {}
