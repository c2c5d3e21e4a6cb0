"""Buffered rounds over real HTTP (the site's /federated mount) on a real SQLite file: a stale
update is accepted with its weight, one too old is a 409 naming the versions, and the file keeps
every update's base, staleness and weight."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from aggregation.http import FederatedApi
from aggregation.service import FederatedModel, FederatedService, ParameterSpec
from aggregation.settings import FederatedSettings
from aggregation.store import SqliteStore
from edgecloud.webserver import StaticSite
from tests.conftest import free_port

SPEC = (ParameterSpec("w", (2, 2)),)


class Publisher:
    def __init__(self) -> None:
        self.published: list[dict] = []

    def publish(self, model: FederatedModel, parameters, provenance, held) -> FederatedModel:
        self.published.append(parameters)
        return FederatedModel(model.name, str(int(model.version) + 1), model.parameters, parameters, provenance["round"])


@pytest.fixture
def site(tmp_path: Path):
    store = SqliteStore(tmp_path / "federated.sqlite")
    settings = FederatedSettings(rounds="buffered", buffer=2, max_staleness=1, staleness_exponent=1.0, max_norm=1e6)
    publisher = Publisher()
    base = {"w": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)}
    service = FederatedService(store, settings, [FederatedModel("m", "1", SPEC, base)], publisher)
    web = StaticSite(tmp_path, port=free_port())
    web.apis["/federated"] = FederatedApi(service).handle
    with web:
        yield web.url, service, publisher, tmp_path / "federated.sqlite"
    store.close()


def post(url: str, client: str, base: str, value: float, samples: int) -> tuple[int, dict]:
    body = {"client": f"client-{client}", "base_version": base, "samples": samples, "delta": {"w": {"shape": [2, 2], "data": [value] * 4}}}
    request = urllib.request.Request(f"{url}/federated/m/updates", json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_stale_updates_within_the_bound_count_with_their_weight_and_older_ones_are_409(site) -> None:
    url, service, publisher, database = site
    assert post(url, "a0000001", "1", 0.0, 1)[0] == 200
    assert post(url, "a0000002", "1", 0.0, 1)[0] == 200
    service.tick()  # version 2
    version_2 = publisher.published[-1]["w"]
    assert post(url, "b0000001", "2", 4.0, 1) == (
        200,
        {"accepted": True, "round": 2, "base_version": "2", "norm": 8.0, "clipped": False, "staleness": 0, "weight": 1.0},
    )
    status, answer = post(url, "b0000002", "1", 8.0, 3)  # computed on version 1, one behind
    assert (status, answer["staleness"], answer["weight"]) == (200, 1, 0.5)
    service.tick()  # version 3 = version 2 + (1·4 + 3·0.5·8) / 4
    assert np.array_equal(publisher.published[-1]["w"], version_2 + 4)
    status, answer = post(url, "c0000001", "1", 1.0, 1)
    assert (status, answer["error"]) == (409, "stale-base")
    assert "base version 1 is 2 versions behind the current 3" in answer["message"]
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT round_id, client, base_version, staleness, weight FROM updates ORDER BY id").fetchall()
        refused = db.execute("SELECT status, reason FROM refusals").fetchall()
    assert rows[2:] == [(2, "client-b0000001", "2", 0, 1.0), (2, "client-b0000002", "1", 1, 0.5)]
    assert refused[0][0] == 409 and refused[0][1].startswith("stale-base: base version 1 is 2 versions behind")
