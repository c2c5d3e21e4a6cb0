"""A model folder (model.onnx + model.json) → `NAME.mar` in MMS's format, via model-archiver."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from argparse import Namespace
from pathlib import Path

from model_archiver.model_packaging_utils import ModelExportUtils

from registry import model_json

from .engines import DEFAULT_ENGINE, KNOWN_ENGINES
from .external_data import ExternalDataError, external_files
from .names import name_problem
from .service import ENGINE_FILE, HANDLER, MANIFEST_FILE


class ArchiveError(Exception):
    """The model folder cannot be archived; the message says why in one line."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refuse_external_data(model_file: Path) -> None:
    """The .mar carries only the ONNX file (the one model.json hashes): data kept beside it would be missing."""
    try:
        found = external_files(model_file)
    except ExternalDataError as error:
        raise ArchiveError(str(error)) from None
    if found:
        tensor, location = next(iter(found.items()))
        raise ArchiveError(
            f"{model_file.name}: tensor {tensor!r} keeps its data in {location!r} beside the file, and the .mar "
            f"carries only {model_file.name}: save the model with its data inside the ONNX file"
        )


def build_archive(version_dir: Path, model_store: Path, *, engine: str = DEFAULT_ENGINE, name: str | None = None) -> Path:
    """Write `MODEL_STORE/NAME.mar` holding the cloud ONNX file, model.json and the engine choice."""
    version_dir = Path(version_dir)
    manifest_path = version_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ArchiveError(f"{version_dir} has no {MANIFEST_FILE}: export a model there first")
    try:
        manifest = model_json.read(manifest_path)
    except model_json.ManifestError as error:
        raise ArchiveError(str(error)) from None
    cloud_file = manifest["cloud"]["file"]
    expected = manifest["files"][cloud_file]["sha256"]
    if engine not in KNOWN_ENGINES:
        raise ArchiveError(f"unknown engine {engine!r}; choose one of {', '.join(KNOWN_ENGINES)}")
    chosen = manifest.get("name") if name is None else name
    if problem := name_problem(chosen):
        raise ArchiveError(problem if name is not None else f"{manifest_path}: {problem}")
    name = chosen
    if not isinstance(cloud_file, str) or Path(cloud_file).name != cloud_file or cloud_file in ("", ".", ".."):
        raise ArchiveError(f"{manifest_path} names cloud file {cloud_file!r}: it must be a file name in {version_dir}")
    model_file = version_dir / cloud_file
    if not model_file.is_file() or _sha256(model_file) != expected:
        raise ArchiveError(f"{model_file} is missing or does not match the SHA-256 in {MANIFEST_FILE}")
    _refuse_external_data(model_file)

    model_store = Path(model_store)
    model_store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / name
        staging.mkdir()
        shutil.copy2(model_file, staging / cloud_file)
        shutil.copy2(manifest_path, staging / MANIFEST_FILE)
        (staging / ENGINE_FILE).write_text(json.dumps({"engine": engine}))
        args = Namespace(runtime="python3", model_name=name, handler=HANDLER)
        mar_manifest = ModelExportUtils.generate_manifest_json(args)
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        ModelExportUtils.archive(str(out_dir), name, str(staging), [], mar_manifest, "default")
        target = model_store / f"{name}.mar"
        # Same filesystem rename after a copy: a server scanning the store never sees half a file.
        partial = model_store / f".{name}.mar.partial"
        shutil.copy2(out_dir / f"{name}.mar", partial)
        partial.replace(target)
    return target
