"""Client tokens over real HTTP (the site's /federated mount, SQLite store): an update without a
valid token for its client is a 401 that /metrics counts; one with it is accepted and stored."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from aggregation.http import FederatedApi
from aggregation.service import FederatedModel, FederatedService, ParameterSpec
from aggregation.settings import FederatedSettings
from aggregation.store import SqliteStore
from aggregation.tokens import TokenVerifier, issue
from edgecloud.webserver import StaticSite
from tests.conftest import free_port

SECRET = b"k" * 48


def post(url: str, client: str, token: str | None) -> tuple[int, dict]:
    content = {"client": client, "base_version": "1", "samples": 2, "delta": {"w": {"shape": [2], "data": [0.5, -0.5]}}}
    if token:
        content["token"] = token
    request = urllib.request.Request(f"{url}/federated/m/updates", json.dumps(content).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_only_updates_with_their_clients_token_are_taken(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "federated.sqlite")
    model = FederatedModel("m", "1", (ParameterSpec("w", (2,)),), {"w": np.zeros(2, np.float32)})
    service = FederatedService(store, FederatedSettings(min_clients=5), [model], publisher=None)  # type: ignore[arg-type]
    site = StaticSite(tmp_path, port=free_port())
    site.apis["/federated"] = FederatedApi(service, TokenVerifier(SECRET)).handle
    token = issue(SECRET, "client-alice", int(time.time()) + 600)
    try:
        with site:
            assert post(site.url, "client-alice", None)[0] == 401
            status, answer = post(site.url, "client-mallory", token)
            assert (status, answer["error"]) == (401, "token-client")
            status, answer = post(site.url, "client-alice", token)
            assert (status, answer["accepted"]) == (200, True)
            with urllib.request.urlopen(f"{site.url}/federated/metrics", timeout=30) as scrape:
                text = scrape.read().decode()
    finally:
        store.close()
    assert 'edgecloud_federated_updates_unauthorized_total{model="m",reason="token-required"} 1.0' in text
    assert 'edgecloud_federated_updates_unauthorized_total{model="m",reason="token-client"} 1.0' in text
    again = SqliteStore(tmp_path / "federated.sqlite")
    assert [u.client for u in again.updates(again.current_round("m").id)] == ["client-alice"] and again.refusals("m") == []
    again.close()
