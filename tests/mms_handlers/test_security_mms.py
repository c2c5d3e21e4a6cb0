"""Security with the real parts: one MMS (Java) whose CORS allows one page's origin, that page and a
second site (another origin), and the system Chromium.

What the OS says the processes listen on; what a browser on each origin may read from MMS; and that a
refused or broken archive fails registration with its reason while the served model keeps serving.
"""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgecloud.stack import StackOptions, allowed_origins
from edgecloud.webserver import StaticSite
from mms_handlers.archive import build_archive
from mms_handlers.server import MmsServer, ServerConfig, ServerError, config_properties
from tests.conftest import free_port

from . import models
from .mars import EVIL, entry, remade, with_hidden_entry

pytestmark = pytest.mark.integration

X = np.random.default_rng(11).standard_normal((2, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """mlp registered on an MMS whose only allowed origin is `page`'s; `other` is the same registry on another port."""
    root = tmp_path_factory.mktemp("security")
    registry, store = root / "registry", root / "store"
    good = build_archive(models.mlp(registry), store)
    with StaticSite(registry, port=free_port()) as page, StaticSite(registry, port=free_port()) as other:
        config = ServerConfig(model_store=store, inference_port=free_port(), management_port=free_port(), cors_origins=[page.url])
        with MmsServer(config) as mms:
            mms.register("mlp.mar")
            yield SimpleNamespace(mms=mms, page=page, other=other, store=store, registry=registry, good=good)


def predict(mms: MmsServer, origin: str | None = None) -> tuple[int, np.ndarray, str | None]:
    request = urllib.request.Request(
        f"{mms.config.inference_url}/predictions/mlp",
        data=json.dumps(X.tolist()).encode(),
        headers={"Content-Type": "application/json", **({"Origin": origin} if origin else {})},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
        return response.status, np.asarray(body["outputs"]["y"]), response.headers.get("Access-Control-Allow-Origin")


# -- binding, as the OS sees it -------------------------------------------------------------------


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net/tcp{,6} write addresses as 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    address = ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)))
    mapped = getattr(address, "ipv4_mapped", None)  # Java binds IPv4 through dual-stack sockets
    return mapped or address


def _fd_links(pid: int) -> list[str]:
    """What each open file descriptor of `pid` points at (fds that close meanwhile are skipped)."""
    links = []
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # the process ended
        return links
    for fd in fds:
        try:
            links.append(os.readlink(fd))
        except OSError:
            continue
    return links


def listening(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state owned by one of `pids`."""
    inodes = {link[len("socket:[") : -1] for pid in pids for link in _fd_links(pid) if link.startswith("socket:[")}
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:
                address, port = local.split(":")
                found.add((str(_address(address)), int(port, 16)))
    return found


def test_mms_and_the_site_listen_on_loopback_only(secured):
    mms = secured.mms
    sockets = listening(mms.process_ids())
    ports = {port for _, port in sockets}
    assert {mms.config.inference_port, mms.config.management_port} <= ports, sockets
    assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets
    site = {(address, port) for address, port in listening([os.getpid()]) if port == secured.page.port}
    assert site == {("127.0.0.1", secured.page.port)}


def test_management_host_is_explicit_and_warned_about(tmp_path):
    default = ServerConfig(model_store=tmp_path)
    assert "management_address=http://127.0.0.1:8081" in config_properties(default).splitlines()
    assert default.exposure_warnings() == []
    exposed = ServerConfig(model_store=tmp_path, management_host="0.0.0.0")
    assert "management_address=http://0.0.0.0:8081" in config_properties(exposed).splitlines()
    (warning,) = exposed.exposure_warnings()
    assert "without authentication" in warning and "authenticating proxy" in warning


# -- CORS -----------------------------------------------------------------------------------------

FETCH = """async ([url, body]) => {
    try {
        const response = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body});
        return {status: response.status, body: await response.json()};
    } catch (error) {
        return {error: `${error.name}: ${error.message}`};
    }
}"""


def test_only_the_configured_origin_may_read_mms_from_a_browser(secured, page):
    mms, url = secured.mms, f"{secured.mms.config.inference_url}/predictions/mlp"
    page.goto(f"{secured.page.url}/models/mlp/1/model.json")
    allowed = page.evaluate(FETCH, [url, json.dumps(X.tolist())])
    assert allowed.get("status") == 200, allowed
    np.testing.assert_allclose(allowed["body"]["outputs"]["y"], models.mlp_reference(X), atol=1e-6)

    page.goto(f"{secured.other.url}/models/mlp/1/model.json")
    refused = page.evaluate(FETCH, [url, json.dumps(X.tolist())])
    assert refused == {"error": "TypeError: Failed to fetch"}
    # The refusal is the browser's: MMS answered, with the one origin it allows.
    blocked = [e for e in page.errors if "blocked by CORS policy" in e]
    assert blocked and f"has a value '{secured.page.url}' that is not equal to the supplied origin" in blocked[0], page.errors

    for origin in (secured.other.url, secured.page.url, None):
        status, outputs, allow_origin = predict(mms, origin)
        assert status == 200 and allow_origin == secured.page.url
        np.testing.assert_allclose(outputs, models.mlp_reference(X), atol=1e-6)
    preflight = urllib.request.Request(
        url,
        method="OPTIONS",
        headers={"Origin": secured.other.url, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    with urllib.request.urlopen(preflight, timeout=30) as response:
        assert response.headers.get("Access-Control-Allow-Origin") == secured.page.url


def test_the_stack_allows_the_page_origin_unless_told_one_other_or_star(tmp_path):
    def origins(*asked: str) -> list[str]:
        server = ServerConfig(model_store=tmp_path, cors_origins=list(asked))
        return allowed_origins(StackOptions(server=server, registry=tmp_path, web_port=8000))

    assert origins() == ["http://127.0.0.1:8000"]
    assert origins("https://app.example.com") == ["https://app.example.com"]
    assert origins("*", "*") == ["*"]


def test_several_origins_are_refused_unless_star_is_asked_for(tmp_path):
    config = ServerConfig(model_store=tmp_path, cors_origins=["http://a.test", "http://b.test"])
    with pytest.raises(ServerError, match=r"one allowed origin, got http://a.test, http://b.test: allow one origin, or '\*' explicitly"):
        config.check()  # what MmsServer.start does first
    config.cors_origins.append("*")
    assert "cors_allowed_origin=*" in config_properties(config).splitlines()


# -- refused and broken archives ------------------------------------------------------------------


def _still_serving(secured) -> None:
    status, outputs, _ = predict(secured.mms)
    assert status == 200
    np.testing.assert_allclose(outputs, models.mlp_reference(X), atol=1e-6)
    assert secured.mms.ping() == "Healthy"
    assert [m["modelName"] for m in secured.mms.models()] == ["mlp"]


def _truncated(good: Path, target: Path) -> Path:
    target.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return target


REFUSED = {
    "truncated": (_truncated, "not a readable zip archive"),
    "zip-slip": (lambda good, t: remade(good, t, extra=[(entry(EVIL), b"x")]), "entry '../evil.txt' escapes the model folder"),
    "hidden entry": (with_hidden_entry, "bytes at offset 0 belong to no listed entry"),
}


def _registration_error(secured, make, mar: str) -> str:
    """Build `mar` with `make` next to the served model, register it, and return the ServerError's message."""
    _still_serving(secured)
    make(secured.good, secured.store / mar)
    try:
        with pytest.raises(ServerError) as caught:
            secured.mms.register(mar)
    finally:
        (secured.store / mar).unlink()
    return str(caught.value)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_archive_leaves_the_served_model_serving(secured, case):
    make, reason = REFUSED[case]
    message = _registration_error(secured, make, "broken.mar")
    assert message.startswith(f"refusing to register broken.mar: {reason}"), message
    assert not [p for root in (secured.mms.runtime_dir, secured.mms.temp_dir, secured.store.parent) for p in root.rglob("evil.txt")]
    _still_serving(secured)


def _garbage_model(good: Path, target: Path) -> Path:
    return remade(good, target, {"model.onnx": b"\x08\x07 this is not an ONNX model" * 32})


def _model_reading_outside(good: Path, target: Path) -> Path:
    return remade(good, target, {"model.onnx": models.external_data_model("../secret.bin").SerializeToString()})


@pytest.mark.parametrize(
    "make, reason",
    [
        (_garbage_model, "EngineLoadError: model.onnx is not a readable ONNX model"),
        (
            _model_reading_outside,
            "EngineLoadError: model.onnx: tensor 'W' keeps its data at '../secret.bin', not a file inside the model's folder",
        ),
    ],
    ids=["garbage model.onnx", "external data outside"],
)
def test_a_sound_archive_with_a_bad_model_fails_registration_naming_why(secured, make, reason):
    """These pass the archive check (the zip is sound): the worker's engine refuses them, and registration says why."""
    message = _registration_error(secured, make, "badmodel.mar")
    assert message.startswith("registering badmodel.mar failed (500)") and reason in message and "\n" not in message, message
    _still_serving(secured)
