"""Client tokens: only what the secret signed, unexpired and for the update's own client, is
taken; every 401 is one line, counted in /metrics and never stored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aggregation.http import FederatedApi
from aggregation.service import FederatedModel, FederatedService, ParameterSpec
from aggregation.settings import FederatedSettings
from aggregation.store import MemoryStore
from aggregation.tokens import TokenError, TokenVerifier, issue, pseudonym, read_secret

SECRET = b"s" * 40
NOW = 1_800_000_000.0


def verifier() -> TokenVerifier:
    return TokenVerifier(SECRET, clock=lambda: NOW)


def test_a_token_lets_its_own_client_send_until_it_expires() -> None:
    token = issue(SECRET, "client-0001", int(NOW) + 60)
    verifier().verify(token, "client-0001")
    with pytest.raises(TokenError) as expired:
        TokenVerifier(SECRET, clock=lambda: NOW + 60).verify(token, "client-0001")
    assert expired.value.code == "token-expired"


@pytest.mark.parametrize(
    "token, client, code",
    [
        (None, "client-0001", "token-required"),
        ("client-0001", "client-0001", "bad-token"),
        (12, "client-0001", "bad-token"),
        (issue(b"another-secret-of-forty-bytes-xxxxxxxxx", "client-0001", int(NOW) + 60), "client-0001", "bad-token"),
        (issue(SECRET, "client-0001", int(NOW) + 60)[:-2] + "AA", "client-0001", "bad-token"),  # signature changed
        (issue(SECRET, "client-0001", int(NOW) + 60).replace(f".{int(NOW) + 60}.", f".{int(NOW) + 9999}."), "client-0001", "bad-token"),
        (issue(SECRET, "client-0001", int(NOW) + 60), "client-0002", "token-client"),  # sending as another
    ],
)
def test_tokens_not_signed_for_this_client_now_are_refused(token, client, code) -> None:
    with pytest.raises(TokenError) as refused:
        verifier().verify(token, client)
    assert refused.value.code == code and "\n" not in refused.value.message


def test_a_login_has_one_stable_pseudonym_that_does_not_reveal_it() -> None:
    assert pseudonym(SECRET, "alice@example.org") == pseudonym(SECRET, "alice@example.org")
    assert pseudonym(SECRET, "alice@example.org") != pseudonym(SECRET, "bob@example.org")
    assert "alice" not in pseudonym(SECRET, "alice@example.org")
    verifier().verify(issue(SECRET, pseudonym(SECRET, "alice"), int(NOW) + 1), pseudonym(SECRET, "alice"))


def test_secret_files_must_hold_enough_bytes(tmp_path: Path) -> None:
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(ValueError, match="has 3 bytes; use at least 32"):
        read_secret(tmp_path / "short")
    with pytest.raises(ValueError, match="cannot read the client secret"):
        read_secret(tmp_path / "missing")
    (tmp_path / "good").write_bytes(SECRET + b"\n")
    assert read_secret(tmp_path / "good") == SECRET
    with pytest.raises(ValueError, match="8-128 letters"):
        issue(SECRET, "a.b", 1)


def update(client: str, token: str | None) -> bytes:
    content = {"client": client, "base_version": "1", "samples": 2, "delta": {"w": {"shape": [2], "data": [1.0, 2.0]}}}
    if token is not None:
        content["token"] = token
    return json.dumps(content).encode()


def test_the_api_takes_only_updates_with_their_clients_token_and_counts_each_401() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    store = MemoryStore()
    model = FederatedModel("m", "1", (ParameterSpec("w", (2,)),), {"w": np.zeros(2, np.float32)})
    service = FederatedService(store, FederatedSettings(min_clients=5), [model], publisher=None)  # type: ignore[arg-type]
    api = FederatedApi(service, verifier())

    def post(raw: bytes):
        return api.handle("POST", "/federated/m/updates", len(raw), lambda n: raw[:n])

    alice = issue(SECRET, "client-alice", int(NOW) + 60)
    status, answer = post(update("client-alice", None))
    assert (status, answer["error"]) == (401, "token-required")
    status, answer = post(update("client-bobby", alice))  # alice's token, another name
    assert (status, answer["error"]) == (401, "token-client") and "'client-alice'" in answer["message"]
    assert post(update("client-alice", alice))[0] == 200
    assert post(update("client-alice", alice))[1]["error"] == "duplicate-client"  # one per round, token or not
    assert store.current_round("m").clients == 1
    assert [r.reason.split(":")[0] for r in store.refusals("m")] == ["duplicate-client"]  # 401s are not stored
    text = api.handle("GET", "/federated/metrics", None, bytes)[1].body.decode()
    samples = {
        (s.name, s.labels.get("reason")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "edgecloud_federated_updates_unauthorized_total"
    }
    assert samples == {
        ("edgecloud_federated_updates_unauthorized_total", "token-required"): 1,
        ("edgecloud_federated_updates_unauthorized_total", "token-client"): 1,
    }


def test_without_a_verifier_no_token_is_needed() -> None:
    model = FederatedModel("m", "1", (ParameterSpec("w", (2,)),), {"w": np.zeros(2, np.float32)})
    api = FederatedApi(FederatedService(MemoryStore(), FederatedSettings(min_clients=5), [model], publisher=None))  # type: ignore[arg-type]
    raw = update("client-alice", None)
    assert api.handle("POST", "/federated/m/updates", len(raw), lambda n: raw[:n])[0] == 200
