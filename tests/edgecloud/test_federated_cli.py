"""`serve --federated` refuses bad settings and models in one line before anything starts;
`federated status` explains a missing database; the site's API mount answers JSON and preflights."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edgecloud.cli import main as cli
from edgecloud.webserver import StaticSite
from registry import Registry
from tests.builders import write_trainable_version_dir, write_version_dir
from tests.conftest import free_port

from .test_cli import one_error_line


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    store, registry = tmp_path / "store", tmp_path / "registry"
    write_trainable_version_dir(registry / "mlp" / "1")
    Registry(registry).set_latest("mlp", 1)
    write_version_dir(registry / "relu" / "1")
    Registry(registry).set_latest("relu", 1)
    for name in ("mlp", "relu"):
        assert cli(["archive", str(registry / name / "1"), "--out", str(store)]) == 0
    return store, registry


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--federated", "mlp", "--min-clients", "0"], "--min-clients must be at least 1, got 0"),
        (["--federated", "mlp", "--dp-noise", "1"], "--dp-noise needs --clip"),
        (["--federated", "mlp", "--clip", "-1"], "--clip must be a positive L2 norm"),
        (["--federated", "mlp", "--round-deadline", "0"], "--round-deadline must be a positive number of seconds"),
        (["--federated", "mlp", "--max-update-bytes", "10"], "--max-update-bytes must be at least 1024"),
        (["--federated", "nope"], "--federated nope: nope.mar is not among the models"),
        (["--federated", "metrics"], "--federated metrics: /federated/metrics is the aggregator's Prometheus endpoint"),
        (["--federated", "relu"], "--federated relu: version 1 has no training entry"),
        (["--federated", "mlp", "--register", "relu.mar"], "--federated mlp: mlp.mar is not among"),
        (["--federated", "mlp", "--rounds", "buffered"], "--buffer must be at least 1 update with --rounds buffered"),
        (["--federated", "mlp", "--buffer", "4"], "--buffer applies to buffered rounds only: add --rounds buffered"),
        (["--federated", "mlp", "--max-staleness", "2"], "--max-staleness applies to buffered rounds only"),
        (
            ["--federated", "mlp", "--rounds", "buffered", "--buffer", "4", "--max-staleness", "-1"],
            "--max-staleness must be a number of versions >= 0",
        ),
        (
            ["--federated", "mlp", "--rounds", "buffered", "--buffer", "4", "--min-clients", "2"],
            "--min-clients applies to synchronous rounds; buffered rounds close with --buffer K",
        ),
        (["--federated", "mlp", "--client-secret", "/nonexistent/secret"], "--client-secret: cannot read the client secret"),
    ],
)
def test_bad_federated_flags_are_one_line_and_exit_2(folders, capsys, extra, fragment) -> None:
    store, registry = folders
    code = cli(["serve", "--model-store", str(store), "--registry", str(registry), "--web-port", str(free_port()), *extra])
    assert code == 2
    assert fragment in one_error_line(capsys)


def test_status_without_a_database_says_how_to_get_one(tmp_path: Path, capsys) -> None:
    assert cli(["federated", "status", str(tmp_path / "mlp")]) == 2
    assert "start `edgecloud serve --federated mlp` first" in one_error_line(capsys)
    assert not (tmp_path / "federated.sqlite").exists()  # status never creates one


def test_site_mounts_an_api_with_json_statuses_and_a_preflight(tmp_path: Path) -> None:
    calls = []

    def api(method, path, length, read):
        calls.append((method, path, length, read(length) if length else b""))
        return (409, {"error": "stale-base"}) if method == "POST" else (200, {"models": []})

    site = StaticSite(tmp_path, port=free_port())
    site.apis["/federated"] = api
    with site:
        with urllib.request.urlopen(f"{site.url}/federated") as response:
            assert json.loads(response.read()) == {"models": []}
        request = urllib.request.Request(f"{site.url}/federated/mlp/updates", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 409 and json.loads(refused.value.read()) == {"error": "stale-base"}
        preflight = urllib.request.Request(f"{site.url}/federated/mlp/updates", method="OPTIONS")
        with urllib.request.urlopen(preflight) as response:
            assert response.status == 204 and "POST" in response.headers["Access-Control-Allow-Methods"]
        with pytest.raises(urllib.error.HTTPError) as elsewhere:
            urllib.request.urlopen(urllib.request.Request(f"{site.url}/demo/", method="OPTIONS"))
        assert elsewhere.value.code == 501
        with pytest.raises(urllib.error.HTTPError) as not_api:
            urllib.request.urlopen(urllib.request.Request(f"{site.url}/demo/", data=b"x", method="POST"))
        assert not_api.value.code == 405
    assert calls[1] == ("POST", "/federated/mlp/updates", 2, b"{}")


def test_token_command_issues_what_the_aggregator_verifies(tmp_path: Path, capsys) -> None:
    from aggregation.tokens import TokenError, TokenVerifier, pseudonym, read_secret

    secret_file = tmp_path / "secret"
    secret_file.write_text("x" * 48 + "\n")
    assert cli(["federated", "token", "--client-secret", str(secret_file), "--login", "alice", "--expires", "2h"]) == 0
    token = capsys.readouterr().out.strip()
    client = pseudonym(read_secret(secret_file), "alice")
    TokenVerifier(read_secret(secret_file)).verify(token, client)
    with pytest.raises(TokenError, match="expired"):
        TokenVerifier(read_secret(secret_file), clock=lambda: 2e10).verify(token, client)
    secret_file.write_text("y" * 48)  # another secret: the old token no longer verifies
    with pytest.raises(TokenError, match="signature"):
        TokenVerifier(read_secret(secret_file)).verify(token, client)


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--client", "client-0001", "--expires", "yesterday"], "--expires 'yesterday': give a duration"),
        (["--client", "client-0001", "--expires", "2001-01-01T00:00:00"], "that is not in the future"),
        (["--client", "a.b", "--expires", "1d"], "--client: client 'a.b': 8-128 letters"),
    ],
)
def test_bad_token_requests_are_one_line_and_exit_2(tmp_path: Path, capsys, extra, fragment) -> None:
    (tmp_path / "secret").write_text("x" * 48)
    assert cli(["federated", "token", "--client-secret", str(tmp_path / "secret"), *extra]) == 2
    assert fragment in one_error_line(capsys)
    assert cli(["federated", "token", "--client-secret", str(tmp_path / "missing"), "--client", "client-0001", "--expires", "1d"]) == 2
    assert "--client-secret: cannot read the client secret" in one_error_line(capsys)
