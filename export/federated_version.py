"""Version N+1 of a trainable model from new values of its trainable parameters (a federated round).

Each inference file is the base's with the bytes at model.json `training.parameters[].locations`
overwritten: every other byte stays, so the graph, the edge lowering and everything the browser
verified about the structure are the base's. Then it proves what it wrote: each patched file
still loads and checks, its trainable initializers equal the new values bit for bit and every
other initializer equals the base's; the new cloud and edge files agree on the recorded sample
and random inputs like it (onnxruntime, export's tolerance). `train.onnx` / `train.edge.onnx`
take the parameters as inputs, so they are carried unchanged.

An edge file whose lowering rewrote a trained tensor has no byte range of it: `--trainable all`
over an LSTM, which the edge lowering unrolls into per-gate weights and, once onnxsim has folded
the tf2onnx bias halves and merged equal constants, into biases that no longer map to one piece of
the parameter. That file is rebuilt by the same lowering (export/edge/lowering.py, every pass
proven against onnxruntime as at export) from the patched cloud file, and kept only if it runs no
operator the base's edge file (which the browser verified) does not, at the same opset, on the
same ONNX.js backends; its structure may differ from the base's where the base's depended on
values (an Add of an all-zero bias is folded away, equal constants are merged). The cloud-vs-edge
proof below then holds it to the new cloud file like a patched one. model.json gets the new version,
hashes and a `federated` provenance entry; the folder appears whole (staged and published by the
registry, `registry.Registry`), and `latest.json` is left alone: the caller moves it once the
version is served (edgecloud/federation.py removes what a process killed meanwhile left behind).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from registry import Registry, model_json

from .edge.lowering import lower
from .errors import BadInputError, ExportError
from .manifest import MANIFEST_NAME, default_opset, file_entry, read_manifest, write_manifest
from .parity import Criterion
from .pipeline import load_feeds
from .verify import DEFAULT_TOLERANCE, accepted_inputs, compare, onnxruntime_runner, remembered


def trainable_parameters(version_dir: Path) -> dict[str, np.ndarray]:
    """The trainable parameters' values in the version's cloud file, by initializer name."""
    manifest = read_manifest(version_dir)
    names = [p["name"] for p in _training(manifest, version_dir)["parameters"]]
    model = onnx.load(str(Path(version_dir) / manifest["cloud"]["file"]))
    found = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer if init.name in names}
    missing = [name for name in names if name not in found]
    if missing:
        raise ExportError(f"{version_dir}: trainable parameter {missing[0]!r} is no initializer of the cloud file")
    return {name: found[name] for name in names}


def _training(manifest: dict[str, Any], version_dir: Path) -> dict[str, Any]:
    training = manifest.get("training")
    if not isinstance(training, dict) or not training.get("parameters"):
        raise BadInputError(f"{version_dir}/{MANIFEST_NAME} has no training entry: export with --trainable first")
    return training


def _patch(raw: bytearray, location: dict[str, int], value: bytes, name: str, file: str) -> None:
    offset, length = int(location["offset"]), int(location["length"])
    if length != len(value) or offset < 0 or offset + length > len(raw):
        raise ExportError(f"{file}: location of {name!r} ({offset}+{length}) does not fit {len(value)} bytes")
    raw[offset : offset + length] = value


def _prove_patched(path: Path, base_path: Path, parameters: Mapping[str, np.ndarray]) -> None:
    """The file loads, checks, holds the new values exactly and every other initializer unchanged."""
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 - any failure of a patched file is the same failure
        raise ExportError(f"{path.name} does not load after patching its parameters: {error}") from None
    base = {init.name: init for init in onnx.load(str(base_path)).graph.initializer}
    for init in model.graph.initializer:
        value = numpy_helper.to_array(init)
        if init.name in parameters:
            if not np.array_equal(value, np.asarray(parameters[init.name], value.dtype)) or value.dtype != np.float32:
                raise ExportError(f"{path.name}: initializer {init.name!r} does not hold the new values after patching")
        elif not np.array_equal(value, numpy_helper.to_array(base[init.name])):
            raise ExportError(f"{path.name}: initializer {init.name!r} changed though it is not trainable")


def _operators(model: onnx.ModelProto) -> set[tuple[str, str]]:
    return {(node.domain or "ai.onnx", node.op_type) for node in model.graph.node}


def _relower(staging: Path, cloud_file: str, edge_file: str, base_dir: Path, tolerance: Criterion | float) -> None:
    """Write `edge_file` by lowering the patched cloud file; refused unless it runs only operators
    the base's edge file runs, at its opset, on every ONNX.js backend the base had."""
    lowering = lower(onnx.load(str(staging / cloud_file)), load_feeds(staging), tolerance)
    base = onnx.load(str(base_dir / edge_file))
    backends = (read_manifest(base_dir).get("edge") or {}).get("backends", [])
    new_operators = sorted(_operators(lowering.model) - _operators(base))
    why = [f"it runs {', '.join(f'{op} ({domain})' for domain, op in new_operators)}, which that file does not"] if new_operators else []
    if default_opset(lowering.model) != default_opset(base):
        why.append(f"its opset is {default_opset(lowering.model)}, that file's {default_opset(base)}")
    if not lowering.changed:
        why.append("no lowering pass applied")
    if why:
        raise ExportError(
            f"lowering the new {cloud_file} does not give a graph like {base_dir.name}/{edge_file}, which the browser verified: "
            f"{'; '.join(why)}; version not written"
        )
    if not set(backends) <= set(lowering.backends):
        raise ExportError(f"the new {edge_file} no longer runs on ONNX.js {sorted(set(backends) - set(lowering.backends))}")
    onnx.save(lowering.model, staging / edge_file)


def write_federated_version(
    model_dir: Path,
    base_version: str,
    parameters: Mapping[str, np.ndarray],
    provenance: dict[str, Any],
    *,
    tolerance: Criterion | float = DEFAULT_TOLERANCE,
) -> Path:
    """Write MODEL_DIR/N+1 from MODEL_DIR/BASE_VERSION with `parameters`; returns the new folder."""
    model_dir = Path(model_dir)
    base_dir = model_dir / str(base_version)
    manifest = read_manifest(base_dir)
    training = _training(manifest, base_dir)
    specs = {p["name"]: p for p in training["parameters"]}
    if set(parameters) != set(specs):
        raise BadInputError(f"parameters {sorted(parameters)} are not the trainable ones {sorted(specs)}")
    values = {}
    for name, spec in specs.items():
        value = np.asarray(parameters[name])
        if tuple(value.shape) != tuple(spec["shape"]) or not np.all(np.isfinite(value)):
            raise BadInputError(f"parameter {name!r}: shape {list(value.shape)} or values do not fit {spec['shape']}")
        values[name] = value.astype("<f4")

    registry = Registry(model_dir.parent)
    with registry.stage(model_dir.name) as staged:
        staging, version = staged.path, str(staged.version)
        for file in manifest["files"]:
            shutil.copy2(base_dir / file, staging / file)
        patched_files = sorted({file for spec in specs.values() for file in spec["locations"]})
        for file in patched_files:
            raw = bytearray((staging / file).read_bytes())
            for name, spec in specs.items():
                if file in spec["locations"]:
                    _patch(raw, spec["locations"][file], values[name].tobytes(), name, file)
            (staging / file).write_bytes(bytes(raw))
            _prove_patched(staging / file, base_dir / file, values)

        cloud_file, edge_file = manifest["cloud"]["file"], (manifest.get("edge") or {}).get("file")
        relowered = []
        if edge_file and edge_file != cloud_file and edge_file not in patched_files:
            _relower(staging, cloud_file, edge_file, base_dir, tolerance)
            relowered = [edge_file]
        parity = None
        if edge_file and edge_file != cloud_file:
            cloud = remembered(onnxruntime_runner(str(staging / cloud_file)))
            inputs = accepted_inputs(cloud, load_feeds(staging))[0]
            report = compare(cloud, onnxruntime_runner(str(staging / edge_file)), inputs, tolerance)
            if not report.passed:
                raise ExportError(
                    f"the new {edge_file} differs from {cloud_file} by {report.per_output[report.worst_output]:.3g} "
                    f"({report.tolerance.describe()}) on output {report.worst_output!r}: version {version} not written"
                )
            parity = report.as_json()

        manifest = model_json.next_version(
            manifest,
            version=version,
            files={file: {**entry, **file_entry(staging / file)} for file, entry in manifest["files"].items()},
            federated=model_json.federated(provenance, patched=patched_files, relowered=relowered, browser_verified_on=str(base_version)),
            parity={"federated_cloud_vs_edge": parity},
        )
        write_manifest(staging, manifest)
        registry.publish(staged, make_latest=False)
    return model_dir / version
