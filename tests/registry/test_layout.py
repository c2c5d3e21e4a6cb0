"""The registry layout: versions, latest.json, staging, publish, recover, retire, check.

The property test interleaves publishes, unpublished writes and their discards with a crash
injected at every filesystem step each takes (what a SIGKILL would leave: no cleanup runs) and
recovery, and checks after every step that latest.json names a complete, hash-true version and
that no number latest.json named is reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from registry import LATEST_NAME, MANIFEST_NAME, Registry, RegistryError, file_digest


def write_version(folder: Path, payload: bytes, name: str = "m") -> None:
    (folder / "model.onnx").write_bytes(payload)
    manifest = {"name": name, "files": {"model.onnx": file_digest(folder / "model.onnx")}}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def publish(registry: Registry, payload: bytes, name: str = "m") -> int:
    with registry.stage(name) as staging:
        write_version(staging.path, payload, name)
        return registry.publish(staging)


def test_publish_makes_a_complete_version_and_moves_latest(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    assert registry.latest("m") is None and registry.versions("m") == []
    assert publish(registry, b"one") == 1
    assert publish(registry, b"two") == 2
    assert registry.versions("m") == [1, 2] and registry.latest("m") == 2 and registry.models() == ["m"]
    pointer = json.loads((tmp_path / "m" / LATEST_NAME).read_text())
    assert pointer == {"name": "m", "version": "2", "manifest": "2/model.json", "versions": ["1", "2"]}
    assert (tmp_path / "m" / "2" / "model.onnx").read_bytes() == b"two"
    assert registry.check("m", 2)["name"] == "m"


def test_an_exception_while_staging_leaves_nothing(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    with pytest.raises(ZeroDivisionError), registry.stage("m") as staging:
        write_version(staging.path, b"x")
        1 / 0  # noqa: B018 - the writer's own failure
    assert sorted(os.listdir(tmp_path / "m")) == []
    assert publish(registry, b"y") == 1  # the number was never published, so it is not skipped


def test_versions_count_only_folders_with_model_json(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    publish(registry, b"one")
    (tmp_path / "m" / "7").mkdir()  # a folder without model.json is no version...
    (tmp_path / "m" / "notes").mkdir()
    assert registry.versions("m") == [1]
    assert publish(registry, b"two") == 8  # ...but its number is taken, so numbers never repeat


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "model.onnx").write_bytes(b"tampered"), "does not match"),
        (lambda d: (d / "model.onnx").unlink(), "not in the folder"),
        (lambda d: (d / MANIFEST_NAME).write_text("{"), "not readable JSON"),
        (lambda d: (d / MANIFEST_NAME).unlink(), "has no model.json"),
        (lambda d: (d / MANIFEST_NAME).write_text('{"files": {}}'), "lists no files"),
    ],
)
def test_check_names_what_is_wrong(tmp_path: Path, damage, message: str) -> None:
    registry = Registry(tmp_path)
    publish(registry, b"one")
    damage(tmp_path / "m" / "1")
    with pytest.raises(RegistryError, match=message):
        registry.check("m", 1)


@pytest.mark.parametrize("version", ["x", "1.5", "0", "-1", "", True])
def test_a_version_that_is_not_a_whole_number_is_refused(tmp_path: Path, version: object) -> None:
    with pytest.raises(RegistryError, match="whole number"):
        Registry(tmp_path).version_dir("m", version)  # type: ignore[arg-type]


def test_set_latest_rolls_back_only_to_a_hash_true_version(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    publish(registry, b"one"), publish(registry, b"two")
    registry.set_latest("m", 1)
    assert registry.latest("m") == 1
    (tmp_path / "m" / "2" / "model.onnx").write_bytes(b"corrupt")
    with pytest.raises(RegistryError, match="does not match"):
        registry.set_latest("m", 2)
    assert registry.latest("m") == 1


def test_publish_over_an_existing_version_needs_replace(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    publish(registry, b"one")
    staging = registry.stage("m", 1)
    write_version(staging.path, b"again")
    with pytest.raises(RegistryError, match="immutable"):
        registry.publish(staging)
    staging = registry.stage("m", 1)
    write_version(staging.path, b"again")
    registry.publish(staging, replace=True)
    assert (tmp_path / "m" / "1" / "model.onnx").read_bytes() == b"again"
    assert not [p for p in os.listdir(tmp_path / "m") if p.startswith(".")]


def test_retire_keeps_the_newest_and_whatever_latest_names(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    for payload in (b"1", b"2", b"3", b"4"):
        publish(registry, payload)
    registry.set_latest("m", 1)
    assert registry.retire("m", 2) == [2]
    assert registry.versions("m") == [1, 3, 4]
    with pytest.raises(RegistryError, match="at least 1"):
        registry.retire("m", 0)


def test_recover_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    publish(registry, b"one")
    staging = registry.stage("m")  # a writer killed here never runs its cleanup
    write_version(staging.path, b"half")
    assert registry.recover("m") == [staging.path]
    assert registry.versions("m") == [1] and publish(registry, b"two") == 2


class Crash(Exception):
    """What a SIGKILL does to the writer at one step: it stops there, no cleanup runs."""


class CrashAt:
    """Raise `Crash` at the n-th filesystem mutation a publication makes (mkdir, write, rename, replace)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, step: int) -> None:
        self.left = step
        for owner, attr in ((Path, "mkdir"), (Path, "write_text"), (Path, "write_bytes"), (Path, "rename"), (os, "replace")):
            original = getattr(owner, attr)
            monkeypatch.setattr(owner, attr, self.wrap(original))

    def wrap(self, original):
        def step(*args, **kwargs):
            self.left -= 1
            if self.left == 0:
                raise Crash
            return original(*args, **kwargs)

        return step


def killed_publish(registry: Registry, payload: bytes, make_latest: bool = True) -> int | None:
    """A publication that stops dead on `Crash` (bypassing the context manager's cleanup)."""
    staging = None
    try:
        staging = registry.stage("m")
        write_version(staging.path, payload)
        return registry.publish(staging, make_latest=make_latest)
    except Crash:
        return None


ACTIONS = ["publish", "write", "discard", "recover", "rollback"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 9)), min_size=1, max_size=12))
def test_latest_always_names_a_complete_hash_true_version_and_numbers_never_repeat(
    tmp_path_factory: pytest.TempPathFactory, plan: list[tuple[str, int]]
) -> None:
    """`write` publishes without moving latest.json (a federated round's output before its close is
    recorded) and `discard` removes such an unpublished version (`remove_version`, as the federated
    publisher clears what a killed closer left), both crashed at a step too: the number of a version
    latest.json ever named never holds anything else, and a discarded one is gone whole."""
    root = tmp_path_factory.mktemp("registry")
    registry = Registry(root)
    contents: dict[int, bytes] = {}  # every number a version holds or held -> what it holds
    named: set[int] = set()  # numbers latest.json named at some point: never rewritten, never discarded
    for index, (action, step) in enumerate(plan):
        if action in ("publish", "write"):
            payload = f"version-{index}".encode()
            with pytest.MonkeyPatch.context() as monkeypatch:
                if step:
                    CrashAt(monkeypatch, step)
                number = killed_publish(registry, payload, make_latest=action == "publish")
            if number is not None:
                assert number not in named, f"version {number} published twice"
                contents[number] = payload
        elif action == "discard":
            latest = registry.latest("m") or 0
            unpublished = [v for v in registry.versions("m") if v > latest and v not in named]
            if unpublished:
                with pytest.MonkeyPatch.context() as monkeypatch:
                    if step:
                        CrashAt(monkeypatch, step)
                    try:
                        registry.remove_version("m", unpublished[step % len(unpublished)])
                    except Crash:
                        pass
        elif action == "recover":
            registry.recover("m")
        elif action == "rollback" and registry.versions("m"):
            registry.set_latest("m", registry.versions("m")[step % len(registry.versions("m"))])
        for version in registry.versions("m"):  # a folder that became a version is whole and hash-true
            registry.check("m", version)
            contents.setdefault(version, (root / "m" / str(version) / "model.onnx").read_bytes())
            assert (root / "m" / str(version) / "model.onnx").read_bytes() == contents[version]
        latest = registry.latest("m")
        if latest is not None:
            assert registry.check("m", latest)
            named.add(latest)
        assert named <= set(registry.versions("m")), "a version latest.json named was removed"
        for gone in set(contents) - set(registry.versions("m")):  # discarded: its number may hold a new version
            del contents[gone]
