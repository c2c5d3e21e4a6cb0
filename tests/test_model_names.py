"""Model names are checked everywhere one enters, by one rule; the static site keeps to its folders.

Entries: `export --name` (export keeps its own copy of the rule: it may not import the serving side),
`archive --name`, the name in model.json, `MmsServer.register(name=...)`, `serve --model-option NAME:...`,
`serve --register NAME.mar`, and the registry's `/models/NAME/` URLs.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil

import pytest

from edgecloud.cli import main as cli
from edgecloud.webserver import StaticSite
from export.pipeline import NAME_PATTERN as EXPORT_NAME_PATTERN
from mms_handlers.archive import build_archive
from mms_handlers.names import NAME_PATTERN, name_problem
from mms_handlers.server import MmsServer, ModelOptions, ServerConfig, ServerError
from tests.builders import write_version_dir
from tests.conftest import free_port

BAD_NAMES = ["9lives", "../up", "a/b", "a b", "mlp\n", "", "-x", "x.y", "naïve"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_export_and_serving_side_share_the_rule():
    assert EXPORT_NAME_PATTERN.pattern == NAME_PATTERN.pattern
    assert name_problem("mlp_2-b") is None
    for name in BAD_NAMES:
        assert name_problem(name) == f"model name {name!r} must start with a letter and use only letters, digits, '_' and '-'"


@pytest.mark.parametrize("name", ["mlp\n", "../up"])
def test_export_name(tmp_path, capsys, name):
    (tmp_path / "model.keras").write_bytes(b"junk")
    assert cli(["export", str(tmp_path / "model.keras"), "--name", name, "--out", str(tmp_path / "reg")]) == 2
    assert f"model name {name!r} must start with a letter" in one_error_line(capsys)


@pytest.mark.parametrize("name", ["../../up", "a/b", "mlp\n"])
def test_archive_name_option(tmp_path, capsys, name):
    folder = write_version_dir(tmp_path / "reg" / "m" / "1", name="m")
    assert cli(["archive", str(folder), "--out", str(tmp_path / "store"), "--name", name]) == 2
    assert f"model name {name!r} must start with a letter" in one_error_line(capsys)
    assert not (tmp_path / "store").exists()


def test_archive_name_from_model_json(tmp_path, capsys):
    folder = write_version_dir(tmp_path / "reg" / "m" / "1", name="m")
    manifest = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**manifest, "name": "../../escaped"}))  # the schema refuses it
    assert cli(["archive", str(folder), "--out", str(tmp_path / "store")]) == 2
    line = one_error_line(capsys)
    assert "model.json is not valid: name: '../../escaped' does not match" in line
    assert not list(tmp_path.rglob("*.mar"))


def test_archive_refuses_a_cloud_file_outside_the_version_folder(tmp_path, capsys):
    folder = write_version_dir(tmp_path / "reg" / "m" / "1", name="m")
    manifest = json.loads((folder / "model.json").read_text())
    shutil.copy(folder / "model.onnx", tmp_path / "outside.onnx")
    manifest["cloud"]["file"] = "../../../outside.onnx"
    manifest["files"]["../../../outside.onnx"] = manifest["files"]["model.onnx"]
    (folder / "model.json").write_text(json.dumps(manifest))
    assert cli(["archive", str(folder), "--out", str(tmp_path / "store")]) == 2
    assert "model.json is not valid: files: '../../../outside.onnx' does not match" in one_error_line(capsys)


@pytest.mark.parametrize("name", ["../up", "a b", "mlp\n"])
def test_register_name(tmp_path, name):
    store = tmp_path / "store"
    build_archive(write_version_dir(tmp_path / "reg" / "m" / "1", name="m"), store)
    server = MmsServer(ServerConfig(model_store=store))  # refused before any request: no need to start it
    with pytest.raises(ServerError, match="^" + re.escape(f"refusing to register m.mar as {name!r}: model name")):
        server.register("m.mar", name=name)


@pytest.fixture
def serve_dirs(tmp_path):
    store, registry = tmp_path / "store", tmp_path / "reg"
    build_archive(write_version_dir(registry / "m" / "1", name="m"), store)
    shutil.copy(store / "m.mar", store / "9lives.mar")  # a file whose stem is no model name
    return store, registry


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--model-option", "../m:batch_size=8"], "--model-option '../m:batch_size=8': model name '../m' must start"),
        (["--model-option", "a b:workers=2"], "--model-option 'a b:workers=2': model name 'a b' must start"),
        (["--register", "9lives.mar"], "--register: refusing to register '9lives.mar': model name '9lives' must start"),
    ],
)
def test_serve_name_options(serve_dirs, capsys, extra, fragment):
    store, registry = serve_dirs
    assert cli(["serve", "--model-store", str(store), "--registry", str(registry), *extra]) == 2
    assert fragment in one_error_line(capsys)


def test_server_config_refuses_options_for_a_bad_name(tmp_path):
    config = ServerConfig(model_store=tmp_path, model_options={"../m": ModelOptions()})
    with pytest.raises(ServerError, match=r"model options for '../m': model name '../m' must start"):
        config.check()


# -- the static site's registry paths ----------------------------------------------------------

SECRET = "secret outside the registry\n"


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    registry = root / "registry"
    write_version_dir(registry / "m" / "1", name="m")
    (registry / "m" / "latest.json").write_text('{"version": 1}')
    (root / "secret.txt").write_text(SECRET)
    (registry / "m" / "link.txt").symlink_to(root / "secret.txt")
    (registry / "9lives").mkdir()  # a folder whose name is no model name
    (registry / "9lives" / "latest.json").write_text('{"version": 1}')
    with StaticSite(registry, port=free_port()) as server:
        yield server


def _get(site: StaticSite, raw_path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (no client-side normalising)."""
    connection = http.client.HTTPConnection(site.host, site.port, timeout=10)
    try:
        connection.putrequest("GET", raw_path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_registry_files_are_served(site):
    status, body = _get(site, "/models/m/latest.json")
    assert (status, json.loads(body)) == (200, {"version": 1})
    assert _get(site, "/models/m/1/model.json")[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/models/../secret.txt",
        "/models/../../secret.txt",
        "/models/m/../../secret.txt",
        "/models/%2e%2e/secret.txt",
        "/models/%2E%2E%2Fsecret.txt",
        "/models/..%2fsecret.txt",
        "/models/m/%2e%2e/%2e%2e/secret.txt",
        "/models/%252e%252e/secret.txt",
        "/models/..\\secret.txt",
        "/models/m/link.txt",
        "/models/9lives/latest.json",
        "/models/../../../../../../etc/passwd",
        "/models/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
    ],
)
def test_nothing_outside_the_registry_is_served(site, path):
    status, body = _get(site, path)
    assert status == 404, (path, status)
    assert SECRET.encode() not in body and b"root:" not in body
