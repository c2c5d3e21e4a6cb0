"""The .mar check before registration: every hostile or broken archive is refused with one line naming the problem."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from mms_handlers.archive import build_archive
from mms_handlers.mar_check import MarError, check_mar
from mms_handlers.server import MmsServer, ServerConfig, ServerError
from tests.builders import write_version_dir

from .mars import EVIL, entry, remade, with_hidden_entry


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return build_archive(write_version_dir(tmp_path / "reg" / "m" / "1", name="m"), tmp_path / "store")


def test_an_archive_built_by_edgecloud_passes(good):
    assert check_mar(good)["model"] == {"modelName": "m", "handler": "mms_handlers.service:handle"}


def _truncated(good: Path, target: Path) -> Path:
    target.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return target


def _flipped(good: Path, target: Path) -> Path:
    """One byte of model.onnx's compressed data changed: the directory still lists it whole."""
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo("model.onnx")
    position = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    data[position] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


BAD = {
    "zip-slip": (lambda good, t: remade(good, t, extra=[(entry(EVIL), b"x")]), "entry '../evil.txt' escapes the model folder"),
    "slip inside a folder": (lambda good, t: remade(good, t, extra=[(entry("a/../../evil.txt"), b"x")]), "escapes the model folder"),
    "absolute path": (lambda good, t: remade(good, t, extra=[(entry("/tmp/evil.txt"), b"x")]), "entry '/tmp/evil.txt' is an absolute path"),
    "symbolic link": (
        lambda good, t: remade(good, t, extra=[(entry("link", stat.S_IFLNK | 0o777), b"/etc/passwd")]),
        "entry 'link' is a symbolic link",
    ),
    "python code": (
        lambda good, t: remade(good, t, extra=[(entry("sitecustomize.py"), b"import os")]),
        "entry 'sitecustomize.py' is Python code",
    ),
    "hidden local entry": (with_hidden_entry, "bytes at offset 0 belong to no listed entry"),
    "truncated": (_truncated, "not a readable zip archive"),
    "garbage": (lambda good, t: t.write_bytes(b"\x00garbage, not a zip\n" * 64) and t, "not a readable zip archive"),
    "flipped byte": (_flipped, "model.onnx"),
    "no MANIFEST.json": (lambda good, t: remade(good, t, {"MAR-INF/MANIFEST.json": None}), "has no MAR-INF/MANIFEST.json"),
    "MANIFEST.json not JSON": (
        lambda good, t: remade(good, t, {"MAR-INF/MANIFEST.json": b"{nope"}),
        "MAR-INF/MANIFEST.json is not valid JSON",
    ),
    "no handler": (
        lambda good, t: remade(good, t, {"MAR-INF/MANIFEST.json": json.dumps({"model": {"modelName": "m"}}).encode()}),
        "MAR-INF/MANIFEST.json names no handler",
    ),
    "another handler": (
        lambda good, t: remade(
            good, t, {"MAR-INF/MANIFEST.json": json.dumps({"model": {"modelName": "m", "handler": "evil:handle"}}).encode()}
        ),
        "names handler 'evil:handle', not mms_handlers.service:handle",
    ),
    "bad model name": (
        lambda good, t: remade(
            good,
            t,
            {"MAR-INF/MANIFEST.json": json.dumps({"model": {"modelName": "../m", "handler": "mms_handlers.service:handle"}}).encode()},
        ),
        "model name '../m' must start with a letter",
    ),
    "no model.json": (lambda good, t: remade(good, t, {"model.json": None}), "has no model.json"),
    "model file missing": (
        lambda good, t: remade(good, t, {"model.onnx": None}),
        "model.json names 'model.onnx', which the archive does not hold",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_archive_is_refused_with_one_line(good, tmp_path, case):
    make, expected = BAD[case]
    bad = make(good, tmp_path / "store" / "bad.mar")
    with pytest.raises(MarError) as caught:
        check_mar(bad)
    message = str(caught.value)
    assert expected in message and "\n" not in message


def test_register_refuses_before_mms_sees_it_and_writes_nothing(good, tmp_path):
    store = good.parent
    remade(good, store / "slip.mar", extra=[(entry(EVIL), b"x")])
    server = MmsServer(ServerConfig(model_store=store, runtime_dir=tmp_path / "runtime"))  # never started
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ServerError, match=r"^refusing to register slip.mar: entry '../evil.txt' escapes the model folder"):
        server.register("slip.mar")
    assert sorted(tmp_path.rglob("*")) == before
    assert not any(path.name == "evil.txt" for path in tmp_path.parent.rglob("evil.txt"))
