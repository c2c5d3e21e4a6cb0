"""The .mar: MMS's manifest naming our handler, the model files, and a refusal on a changed file."""

from __future__ import annotations

import json
import zipfile

import pytest

from mms_handlers.archive import ArchiveError, build_archive
from tests.builders import write_version_dir


def _version_dir(tmp_path):
    return write_version_dir(tmp_path / "reg" / "m" / "1", name="m")


def test_mar_layout(tmp_path):
    mar = build_archive(_version_dir(tmp_path), tmp_path / "store")
    assert mar == tmp_path / "store" / "m.mar"
    with zipfile.ZipFile(mar) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
        engine = json.loads(archive.read("engine.json"))
    assert {"model.onnx", "model.json", "engine.json", "MAR-INF/MANIFEST.json"} <= names
    assert manifest["model"] == {"modelName": "m", "handler": "mms_handlers.service:handle"}
    assert manifest["runtime"] == "python3"
    assert engine == {"engine": "onnxruntime"}


def test_tampered_model_is_refused(tmp_path):
    folder = _version_dir(tmp_path)
    (folder / "model.onnx").write_bytes(b"changed")  # after model.json recorded the hash
    with pytest.raises(ArchiveError, match="does not match the SHA-256"):
        build_archive(folder, tmp_path / "store")


def test_missing_manifest(tmp_path):
    with pytest.raises(ArchiveError, match="has no model.json"):
        build_archive(tmp_path, tmp_path / "store")
