"""model.json: the contract between export, the archive, the MMS handler and the browser.

The handler and the browser read the JSON directly (they never import this module); this
module is the one place that writes it, so every converter produces the same shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx

from registry import LATEST_NAME, MANIFEST_NAME, Registry, file_digest, write_json_atomic

SCHEMA_VERSION = 1

_ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.BOOL: "bool",
    onnx.TensorProto.STRING: "string",
}


def tensor_specs(values: list[onnx.ValueInfoProto]) -> list[dict[str, Any]]:
    """Signature entries `{"name", "dtype", "shape"}`, with `None` for free dimensions."""
    specs = []
    for value in values:
        tensor_type = value.type.tensor_type
        shape: list[int | None] = [
            dim.dim_value if dim.HasField("dim_value") else None for dim in tensor_type.shape.dim
        ]
        dtype = _ONNX_DTYPES.get(tensor_type.elem_type, onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower())
        specs.append({"name": value.name, "dtype": dtype, "shape": shape})
    return specs


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real graph inputs: old exporters also list initializers as inputs."""
    initializers = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def default_opset(model: onnx.ModelProto) -> int:
    """The version of the default (ai.onnx) operator set the model was written for."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ValueError("model imports no ai.onnx operator set")


def file_entry(path: Path) -> dict[str, Any]:
    """SHA-256 and size, so the browser and the archive can check what they got."""
    return file_digest(path)


def read_manifest(version_dir: Path) -> dict[str, Any]:
    """Load `VERSION_DIR/model.json`."""
    return json.loads((Path(version_dir) / MANIFEST_NAME).read_text())


def write_manifest(version_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write `VERSION_DIR/model.json`; returns its path."""
    path = Path(version_dir) / MANIFEST_NAME
    write_json_atomic(path, manifest)
    return path


def training_entry(*, file: str, edge: dict[str, Any], trainable: str, batch_size: int, names: dict[str, Any],
                   loss: dict[str, Any], optimizer: dict[str, Any], parity: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """model.json's `training` entry, in the key order docs/training.md shows."""
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
    }


def update_latest(model_dir: Path) -> Path:
    """Point `NAME/latest.json` at the highest complete version (the registry's layout owns the file)."""
    model_dir = Path(model_dir)
    registry = Registry(model_dir.parent)
    versions = registry.versions(model_dir.name)
    if not versions:
        raise ValueError(f"{model_dir} holds no exported version")
    registry.set_latest(model_dir.name, versions[-1], check=False)
    return model_dir / LATEST_NAME
