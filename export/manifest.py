"""model.json from an ONNX graph: the signature, the opset; the contract itself is registry.model_json.

The handler and the browser read the JSON directly (they never import this module). The schema,
the section builders, validation and writing live in the leaf `registry.model_json`, which the
serving side may import too; this module adds what needs onnx (signatures from a graph). The
registry's layout (versions, latest.json) is `registry.Registry`'s alone: callers use it directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from registry import MANIFEST_NAME, model_json
from registry.model_json import file_entry

__all__ = [
    "MANIFEST_NAME",
    "default_opset",
    "file_entry",
    "graph_inputs",
    "read_manifest",
    "tensor_specs",
    "write_manifest",
]

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
        shape: list[int | None] = [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor_type.shape.dim]
        dtype = _ONNX_DTYPES.get(tensor_type.elem_type, onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower())
        specs.append(model_json.tensor(value.name, dtype, shape))
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


def read_manifest(version_dir: Path) -> dict[str, Any]:
    """Load and validate `VERSION_DIR/model.json` (ManifestError, one line, when it is not one)."""
    return model_json.read(Path(version_dir) / MANIFEST_NAME)


def write_manifest(version_dir: Path, manifest: dict[str, Any]) -> Path:
    """Validate, then write `VERSION_DIR/model.json` atomically; returns its path."""
    return model_json.write(Path(version_dir) / MANIFEST_NAME, manifest)
