"""A real replica (MMS + front door) watching a registry folder: the model's name follows the newest
version under a load of 32 clients with no failed request, pinned versions answer while kept, old
ones are retired, rollback routes back, and broken versions are logged and never served."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from mms_handlers.replica.runner import Replica, ReplicaSettings
from mms_handlers.server import ServerConfig
from tests.conftest import free_port
from tests.mms_handlers.replica.rollout import (
    Load,
    ask,
    publish,
    set_latest,
    wait_for_version,
)

pytestmark = pytest.mark.integration

NAME = "plus"
NAME_PATHS = [f"/predictions/{NAME}", f"/v2/models/{NAME}/infer"]


def metadata(base: str, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    registry = root / "registry"
    publish(registry, NAME, 1)
    server = ServerConfig(
        model_store=root / "unused", inference_port=free_port(), management_port=free_port(), java_heap_mb=256, runtime_dir=root / "mms"
    )
    settings = ReplicaSettings(server=server, port=free_port(), drain_seconds=0.0, registry=registry, keep_versions=2)
    replica = Replica(settings)
    replica.lines = []
    replica.watcher.log = replica.lines.append
    replica.start()
    replica.base, replica.registry = f"http://127.0.0.1:{settings.port}", registry
    yield replica
    replica.stop(drain_seconds=0)


def registered(replica) -> set[str]:
    return {model["modelName"] for model in replica.mms.models()}


def switch_under_load(replica, change, version: int) -> tuple[Load, float]:
    """Run `change` (publish or roll back) while 32 clients call the name on both APIs; returns the load
    and when every name path first answered with `version`."""
    with Load(replica.base, NAME_PATHS, clients=32) as load:
        while load.count() < 64:  # the load runs before the switch, too
            time.sleep(0.05)
        change()
        seen = wait_for_version(replica.base, NAME_PATHS, version)
        count_at_seen = load.count()
        while load.count() < count_at_seen + 200:  # and after it
            time.sleep(0.05)
    return load, seen


def test_starts_with_the_version_latest_json_names(replica):
    answer = ask(replica.base, f"/predictions/{NAME}")
    assert (answer.status, answer.version, answer.model_version) == (200, 1, "1")
    status, meta = metadata(replica.base, f"/v2/models/{NAME}")
    assert status == 200 and meta["versions"] == ["1"] and meta["name"] == NAME
    assert registered(replica) == {f"{NAME}-v1"}


def test_publish_under_load_switches_the_name_with_no_failed_request(replica):
    load, seen = switch_under_load(replica, lambda: publish(replica.registry, NAME, 2), 2)
    assert load.failed() == [], f"{len(load.failed())} of {load.count()} requests failed: {load.failed()[:3]}"
    before = [a for a in load.answers if a.started < seen]
    after = [a for a in load.answers if a.started >= seen]
    assert {a.version for a in before} <= {1, 2} and any(a.version == 1 for a in before)
    assert after and {(a.version, a.model_version) for a in after} == {(2, "2")}  # every answer after the switch
    status, meta = metadata(replica.base, f"/v2/models/{NAME}")
    assert status == 200 and meta["versions"] == ["1", "2"]
    pinned = ask(replica.base, f"/v2/models/{NAME}/versions/1/infer")  # N still answers on its version path
    assert (pinned.status, pinned.version, pinned.model_version) == (200, 1, "1")
    assert ask(replica.base, f"/predictions/{NAME}-v1").version == 1  # and under its MMS name


def test_keeps_the_newest_k_versions_and_retires_the_rest(replica):
    publish(replica.registry, NAME, 3)
    wait_for_version(replica.base, NAME_PATHS, 3)
    deadline = time.monotonic() + 60
    while f"{NAME}-v1" in registered(replica) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert registered(replica) == {f"{NAME}-v2", f"{NAME}-v3"}  # version 1's workers are gone
    assert metadata(replica.base, f"/v2/models/{NAME}")[1]["versions"] == ["2", "3"]
    gone = ask(replica.base, f"/v2/models/{NAME}/versions/1/infer")
    assert gone.status == 404
    assert ask(replica.base, f"/v2/models/{NAME}/versions/2/infer").version == 2
    assert any(line == f"{NAME} version 1 retired (keeping 2)" for line in replica.lines)


def test_rollback_under_load_fails_no_request(replica):
    load, _ = switch_under_load(replica, lambda: set_latest(replica.registry, NAME, 2), 2)
    assert load.failed() == []
    assert ask(replica.base, f"/v2/models/{NAME}/infer").version == 2
    assert registered(replica) == {f"{NAME}-v2", f"{NAME}-v3"}  # rolled back to a kept version: nothing reloaded
    set_latest(replica.registry, NAME, 3)
    wait_for_version(replica.base, NAME_PATHS, 3)


def break_missing_manifest(registry, version):
    folder = publish(registry, NAME, version, latest=False)
    (folder / "model.json").unlink()


def break_hash(registry, version):
    folder = publish(registry, NAME, version, latest=False)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    (folder / "model.onnx").write_bytes(bytes(data))


def break_missing_file(registry, version):
    folder = publish(registry, NAME, version, latest=False)
    manifest = json.loads((folder / "model.json").read_text())
    manifest["files"]["extra.bin"] = {"sha256": "0" * 64, "size": 3}
    (folder / "model.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "version, breaks, expected",
    [
        (4, break_missing_manifest, "version 4 of plus has no model.json"),
        (5, break_hash, "/plus/5/model.onnx: SHA-256"),
        (6, break_missing_file, "names 'extra.bin', which is not in the folder"),
    ],
)
def test_a_broken_version_is_logged_in_one_line_and_never_served(replica, version, breaks, expected):
    before = registered(replica)
    breaks(replica.registry, version)
    set_latest(replica.registry, NAME, version)
    line = wait_for_line(replica, f"{NAME} version {version} not served")
    assert expected in line and "\n" not in line
    answer = ask(replica.base, f"/predictions/{NAME}")
    assert (answer.status, answer.version) == (200, 3)  # the previous version keeps answering
    assert registered(replica) == before
    set_latest(replica.registry, NAME, 3)


def test_a_version_that_is_not_a_number_is_refused_in_one_line(replica):
    set_latest(replica.registry, NAME, "v7")
    line = wait_for_line(replica, "'v7'")
    assert line == f"{NAME}: version 'v7' must be a whole number ≥ 1"
    assert ask(replica.base, f"/v2/models/{NAME}/infer").version == 3
    set_latest(replica.registry, NAME, 3)


def wait_for_line(replica, fragment: str, limit_s: float = 60.0) -> str:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = [line for line in replica.lines if fragment in line]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no log line with {fragment!r} in {replica.lines}")


def test_keep_versions_zero_is_refused_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mms_handlers.replica", "--registry", str(tmp_path), "--keep-versions", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["replica: error: --keep-versions must be at least 1, got 0"]


def test_edgecloud_versions_serve_rolls_back_under_load_and_refuses_bad_versions(replica, capsys):
    from edgecloud.cli import main as cli

    registry = str(replica.registry)
    load, _ = switch_under_load(replica, lambda: cli(["versions", NAME, "--registry", registry, "--serve", "2"]), 2)
    assert load.failed() == []
    assert capsys.readouterr().out.splitlines()[:3] == ["1", "2  ← latest.json (served)", "3"]
    for value, message in [
        ("x", "--serve 'x': a version is a number"),
        ("99", f"--serve 99: {NAME} has no complete version 99"),
        ("5", "/plus/5/model.onnx: SHA-256"),
    ]:
        assert cli(["versions", NAME, "--registry", registry, "--serve", value]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and message in error and error.startswith("edgecloud versions: error: ")
        assert json.loads((replica.registry / NAME / "latest.json").read_text())["version"] == "2"  # unchanged
    assert ask(replica.base, f"/predictions/{NAME}").version == 2


def test_a_version_written_by_edgecloud_export_is_served(replica, tmp_path):
    import onnx

    from edgecloud.cli import main as cli
    from tests.mms_handlers.replica.rollout import plus_model

    onnx.save(plus_model(7), tmp_path / "plus7.onnx")
    assert cli(["export", str(tmp_path / "plus7.onnx"), "--name", NAME, "--version", "7", "--out", str(replica.registry), "--no-edge"]) == 0
    wait_for_version(replica.base, NAME_PATHS, 7)
    assert ask(replica.base, f"/v2/models/{NAME}/infer").model_version == "7"


def test_a_version_that_meets_a_passing_failure_on_the_replicas_side_is_tried_again(replica):
    """A real failure that is not the version's: the replica's archive folder is a file for a while, so
    archiving version 8 fails (OSError). It is logged once, version 7 keeps answering, and once the folder
    is back a later try serves version 8 (a failed version used to be skipped for good)."""
    store = replica.watcher.store
    aside = store.with_name(f"{store.name}-aside")
    store.rename(aside)
    store.write_text("in the way")
    try:
        publish(replica.registry, NAME, 8)
        line = wait_for_line(replica, f"{NAME} version 8 not served yet")
        assert "trying again" in line and "\n" not in line
        assert ask(replica.base, f"/predictions/{NAME}").version == 7
    finally:
        store.unlink()
        aside.rename(store)
    wait_for_version(replica.base, NAME_PATHS, 8)
    assert ask(replica.base, f"/v2/models/{NAME}/infer").model_version == "8"
    assert sum(f"{NAME} version 8 not served" in line for line in replica.lines) == 1  # one line, however many tries


def test_a_replica_whose_first_version_meets_a_passing_failure_is_not_ready_until_it_serves_it(tmp_path):
    """The case a gateway test met: a replica that could not load its model at start must not say ready
    (it said ready serving nothing, and the gateway sent it half the requests)."""
    registry = tmp_path / "registry"
    publish(registry, NAME, 1)
    server = ServerConfig(model_store=tmp_path / "unused", inference_port=free_port(), management_port=free_port(), java_heap_mb=256)
    settings = ReplicaSettings(server=server, port=free_port(), drain_seconds=0.0, registry=registry)
    replica = Replica(settings)
    store = replica.watcher.store
    aside = store.with_name(f"{store.name}-aside")
    start_mms = replica.mms.start

    def start_mms_then_block_the_archive_folder():  # MMS needs the folder to start; the watcher comes next
        start_mms()
        store.rename(aside)
        store.write_text("in the way")

    replica.mms.start = start_mms_then_block_the_archive_folder
    replica.start()
    try:
        base = f"http://127.0.0.1:{settings.port}"
        status, health = wait_for_health(base, lambda health: any("version 1 not served yet" in r for r in health["reasons"]))
        assert status == 503 and health["ready"] is False
        assert ask(base, f"/predictions/{NAME}").status == 404
        store.unlink()
        aside.rename(store)
        assert wait_for_health(base, lambda health: health["ready"]) == (200, {"ready": True, "reasons": []})
        assert ask(base, f"/predictions/{NAME}").version == 1
    finally:
        replica.stop(drain_seconds=0)


def wait_for_health(base: str, wanted, limit_s: float = 60.0) -> tuple[int, dict]:
    """`/v2/health/ready` once `wanted(body)` holds (readiness is looked up in the background)."""
    deadline = time.monotonic() + limit_s
    while True:
        status, health = metadata(base, "/v2/health/ready")
        if wanted(health) or time.monotonic() > deadline:
            return status, health
        time.sleep(0.2)


def test_a_model_the_registry_lacks_is_served_from_its_archive(tmp_path):
    from mms_handlers.archive import build_archive
    from tests.mms_handlers import models

    registry = tmp_path / "registry"
    publish(registry, NAME, 1)
    build_archive(models.mlp(tmp_path / "elsewhere"), tmp_path / "store")  # mlp: in the store only
    server = ServerConfig(model_store=tmp_path / "store", inference_port=free_port(), management_port=free_port(), java_heap_mb=256)
    settings = ReplicaSettings(server=server, port=free_port(), drain_seconds=0.0, registry=registry, register=[NAME, "mlp"])
    replica = Replica(settings).start()
    try:
        base = f"http://127.0.0.1:{settings.port}"
        assert registered(replica) == {f"{NAME}-v1", "mlp"}
        assert ask(base, f"/predictions/{NAME}").version == 1
        status, meta = metadata(base, "/v2/models/mlp")
        assert status == 200 and meta["versions"] == ["1"]
        deadline = time.monotonic() + 60  # readiness is looked up in the background
        while metadata(base, "/v2/health/ready")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert metadata(base, "/v2/health/ready") == (200, {"ready": True, "reasons": []})
    finally:
        replica.stop(drain_seconds=0)
