"""model.json and latest.json: one builder per section for every writer, one validation for every reader.

The contract is the committed JSON Schema (`schema/model.schema.json`, `schema/latest.schema.json`,
draft 2020-12), checked with `jsonschema` (the library made for it) as MLServer checks
`model-settings.json` where it is read. What a schema cannot say is checked here after it: that
the files the manifest names (`cloud.file`, `edge.file`, the training files, the parameters'
locations) are listed in `files`. A reader meets one `ManifestError` line naming the problem: an
unknown major `schema` first (before any other key is judged), then the first schema violation
with its path (`inputs[0].shape[1]`).

The builders return plain dicts in the key order the files have always had, so what is written
stays byte-compatible; they take keyword arguments so a misspelt section key fails where it is
written, not in the page. This module imports only the standard library, jsonschema and its
sibling `layout` (the file names, hashing and atomic writes): the MMS handler, the aggregator and
the export side all use it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema

from .layout import LATEST_NAME, MANIFEST_NAME, RegistryError, file_digest, write_json_atomic

SCHEMA_VERSION = 1  # the major version this release reads and writes
ROLES = ("cloud", "edge", "cloud+edge", "train", "train-edge")


class ManifestError(RegistryError):
    """model.json or latest.json is not what the schema says; the message is one line naming why."""


# --- builders, one per section ---------------------------------------------------------------


def tensor(name: str, dtype: str, shape: Iterable[int | None]) -> dict[str, Any]:
    """A signature entry: `shape` has None for a free dimension (the first one is the batch)."""
    return {"name": name, "dtype": dtype, "shape": list(shape)}


def file_entry(path: Path, *, role: str | None = None, opset: int | None = None, parity: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A `files` entry: SHA-256 and size of `path` (the browser and the archive check both), then who reads it."""
    if role is not None and role not in ROLES:
        raise ValueError(f"file role {role!r} is none of {', '.join(ROLES)}")
    entry = file_digest(Path(path))
    if role is not None:
        entry["role"] = role
    if opset is not None:
        entry["opset"] = opset
    if parity is not None:
        entry["parity"] = dict(parity)
    return entry


def source(framework: str, framework_version: str, file: str, warnings: list[str] | None = None) -> dict[str, Any]:
    """Provenance of an export: which framework (and version) wrote which source file; `warnings`: what
    the import accepted with a doubt (omitted when none)."""
    entry: dict[str, Any] = {"framework": framework, "framework_version": framework_version, "file": file}
    if warnings:
        entry["warnings"] = list(warnings)
    return entry


def edge(
    *,
    file: str,
    runtime: str,
    lowered: bool,
    passes: list[dict[str, Any]],
    blockers: Mapping[str, list[str]],
    backends: list[str],
    inputs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The browser side (`edge`, and `training.edge`): its file, runtime, what lowering did; `verified` stays
    empty until `edgecloud verify` records a table. `inputs`: the shapes a pinned browser file takes."""
    entry: dict[str, Any] = {
        "file": file,
        "runtime": runtime,
        "lowered": lowered,
        "passes": passes,
        "blockers": dict(blockers),
        "backends": backends,
        "verified": {},
    }
    if inputs is not None:
        entry["inputs"] = inputs
    return entry


def training_data(name: str, dtype: str, shape: Iterable[int], value_range: tuple[int, int] | None = None) -> dict[str, Any]:
    """One `training.inputs.data` entry: the model input fed to the step under its own name, float32 values
    or integer ids; `range` (ids only, when the model says): the smallest and largest id it takes."""
    entry: dict[str, Any] = {"name": name, "input": name, "dtype": dtype, "shape": list(shape)}
    if value_range is not None:
        entry["range"] = [int(value_range[0]), int(value_range[1])]
    return entry


def training(
    *,
    file: str,
    edge: dict[str, Any],
    trainable: str,
    batch_size: int,
    names: Mapping[str, Any],
    loss: dict[str, Any],
    optimizer: dict[str, Any],
    parity: dict[str, Any],
    trained: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `training` entry, in the key order docs/training.md shows (`names`: parameters, state, inputs, outputs;
    `trained`: how many tensors and values the step trains, and what stays frozen)."""
    return {
        "file": file,
        "edge": edge,
        "trainable": trainable,
        "batch_size": batch_size,
        "parameters": names["parameters"],
        "state": names["state"],
        "inputs": names["inputs"],
        "outputs": names["outputs"],
        "loss": loss,
        "optimizer": optimizer,
        "parity": parity,
        **({"trained": trained} if trained is not None else {}),
    }


def serving(*, allow_nan: bool) -> dict[str, Any]:
    """The optional serving policy the REST checks and the page read (export writes none)."""
    return {"allow_nan": allow_nan}


def federated(
    provenance: Mapping[str, Any], *, patched: list[str], browser_verified_on: str, relowered: list[str] | None = None
) -> dict[str, Any]:
    """Provenance of a version a federated round wrote: the round's own keys, the files patched, the
    files rebuilt by lowering the patched cloud file (same operators as the base's), and the version
    whose browser verification still holds (the structure is the base's)."""
    entry = {**provenance, "patched": patched, "browser_verified_on": str(browser_verified_on)}
    return {**entry, "relowered": relowered} if relowered else entry


def now() -> str:
    """`created`: UTC, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def manifest(
    *,
    name: str,
    version: str | int,
    source: dict[str, Any] | None,
    opset: int | None,
    ir_version: int | None,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    files: Mapping[str, dict[str, Any]],
    cloud_file: str,
    edge: dict[str, Any],
    parity: Mapping[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    serving: dict[str, Any] | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    """A whole model.json, validated; None drops an optional key (hand-built test models have no source)."""
    content: dict[str, Any] = {"schema": SCHEMA_VERSION, "name": name, "version": str(version), "created": created or now()}
    optional = {"source": source, "opset": opset, "ir_version": ir_version}
    content.update({key: value for key, value in optional.items() if value is not None})
    content.update(inputs=inputs, outputs=outputs, files=dict(files), cloud={"file": cloud_file}, edge=edge)
    if parity is not None:
        content["parity"] = dict(parity)
    if training is not None:
        content["training"] = training
    if serving is not None:
        content["serving"] = serving
    return validate(content)


def next_version(
    base: Mapping[str, Any],
    *,
    version: str | int,
    files: Mapping[str, dict[str, Any]],
    federated: dict[str, Any],
    parity: Mapping[str, Any],
) -> dict[str, Any]:
    """model.json of a version derived from `base` (a federated round): new version, time, hashes and
    provenance; `parity` is added to the base's figures. Everything else is the base's."""
    content = dict(base)
    content["version"] = str(version)
    content["created"] = now()
    content["files"] = dict(files)
    content["federated"] = federated
    content["parity"] = {**content.get("parity", {}), **parity}
    return validate(content)


def latest(name: str, version: str | int, versions: Iterable[str | int]) -> dict[str, Any]:
    """latest.json: the current version, where its model.json is, and every complete version."""
    content = {"name": name, "version": str(version), "manifest": f"{version}/{MANIFEST_NAME}", "versions": [str(v) for v in versions]}
    return validate_latest(content)


# --- validation, for every reader ------------------------------------------------------------


@lru_cache(maxsize=None)
def _validator(file: str) -> jsonschema.protocols.Validator:
    schema = json.loads(resources.files(__package__).joinpath("schema", file).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _where(error: jsonschema.ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "the top level"


def _first_error(file: str, content: Any) -> str | None:
    error = jsonschema.exceptions.best_match(_validator(file).iter_errors(content))
    if error is None:
        return None
    message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    return f"{_where(error)}: {message}"


def _listed(content: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, file) for every file the manifest refers to outside `files`."""
    named = [("cloud.file", content["cloud"]["file"]), ("edge.file", content["edge"]["file"])]
    training_ = content.get("training") or {}
    if "file" in training_:
        named.append(("training.file", training_["file"]))
    if "file" in (training_.get("edge") or {}):
        named.append(("training.edge.file", training_["edge"]["file"]))
    for index, parameter in enumerate(training_.get("parameters", [])):
        named += [(f"training.parameters[{index}].locations", file) for file in parameter.get("locations", {})]
    return named


def validate(content: Any, where: str = MANIFEST_NAME) -> dict[str, Any]:
    """`content` if it is a model.json this release reads; else ManifestError naming the first problem."""
    if not isinstance(content, dict):
        raise ManifestError(f"{where} is no JSON object")
    major = content.get("schema")
    if major is None:
        raise ManifestError(f'{where} names no schema version ("schema": {SCHEMA_VERSION})')
    if major != SCHEMA_VERSION or isinstance(major, bool):
        raise ManifestError(f"{where} has schema {major!r}, which this release cannot read (it reads schema {SCHEMA_VERSION})")
    problem = _first_error("model.schema.json", content)
    if problem:
        raise ManifestError(f"{where} is not valid: {problem}")
    for key, file in _listed(content):
        if file not in content["files"]:
            raise ManifestError(f"{where} is not valid: {key} names {file!r}, which `files` does not list")
    return content


def validate_latest(content: Any, where: str = LATEST_NAME) -> dict[str, Any]:
    """`content` if it is a latest.json; else ManifestError naming the first problem."""
    problem = _first_error("latest.schema.json", content)
    if problem:
        raise ManifestError(f"{where} is not valid: {problem}")
    return content


def _load(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ManifestError(f"{path} is not readable JSON: {str(error).splitlines()[0]}") from None


def read(path: Path) -> dict[str, Any]:
    """Load and validate a model.json file."""
    return validate(_load(path), str(path))


def read_latest(path: Path) -> dict[str, Any]:
    """Load and validate a latest.json file."""
    return validate_latest(_load(path), str(path))


def parse(raw: bytes | str, where: str = MANIFEST_NAME) -> dict[str, Any]:
    """Validate model.json bytes (from inside a .mar) as `read` does a file."""
    try:
        content = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        raise ManifestError(f"{where} is not readable JSON: {str(error).splitlines()[0]}") from None
    return validate(content, where)


def write(path: Path, content: Mapping[str, Any]) -> Path:
    """Validate, then write model.json atomically: no writer can publish a manifest a reader refuses."""
    write_json_atomic(path, validate(dict(content), str(path)))
    return Path(path)
