"""Which tensors of an ONNX file keep their data in other files, refusing any that point outside its folder.

An ONNX tensor may name an external file (`location`) holding its bytes. A model from elsewhere could
name `../../etc/shadow` or an absolute path, and the engine would read it into the model's weights.
onnx 1.23 and onnxruntime 1.31 refuse that themselves; this check stays as defence in depth with
our own message, and it lists the files so `edgecloud archive` can refuse what the .mar would lack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import onnx


class ExternalDataError(ValueError):
    """A tensor's external data lies outside the model's folder (or the file is no ONNX model)."""


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor of a graph: initializers (sparse ones too) and those of its nodes."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    """Tensors in a node's attributes, including those of its subgraphs (If, Loop, Scan)."""
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        sparse = [*attribute.sparse_tensors, *([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else [])]
        for tensor in sparse:
            yield from (tensor.values, tensor.indices)
        for graph in [*([attribute.g] if attribute.HasField("g") else []), *attribute.graphs]:
            yield from _graph_tensors(graph)


def _model_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)


def _inside(folder: Path, location: str) -> bool:
    """Whether `location` names a file inside `folder` (relative, no escape by `..` or a symbolic link)."""
    if not location or "\x00" in location or Path(location).is_absolute():
        return False
    target = (folder / location).resolve()
    return target != folder and target.is_relative_to(folder)


def external_files(model_path: Path) -> dict[str, str]:
    """{tensor name: location} for tensors stored outside `model_path`; ExternalDataError for one
    whose location is not a file inside the model's folder (absolute, `..`, or a symbolic link out)."""
    model_path = Path(model_path)
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as error:  # noqa: BLE001 - protobuf raises several private types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExternalDataError(f"{model_path.name} is not a readable ONNX model ({reason})") from None
    folder = model_path.resolve().parent
    found: dict[str, str] = {}
    for tensor in _model_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        if not _inside(folder, location):
            raise ExternalDataError(
                f"{model_path.name}: tensor {tensor.name!r} keeps its data at {location!r}, not a file inside the model's folder"
            )
        found[tensor.name] = location
    return found
