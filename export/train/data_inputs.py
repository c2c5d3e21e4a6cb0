"""The training step's data inputs: float32 values, or integer ids (int64/int32, as torch.onnx emits
for an `nn.Embedding` input), and the range of ids a model can take.

An integer input is fed to the step as it is fed to the model: the step graph takes it with its
own dtype, the trainable tail reads it (a Gather on an embedding table) and nothing differentiates
it. When every reader of the input is a Gather (axis 0) on an initializer table, the valid ids
are that table's rows: model.json records `"range": [0, rows - 1]` so the runner and the page
refuse an id out of the vocabulary in one line, before onnxruntime fails on it. Random batches for
tracing and parity draw ids from that range (else from the sample's own range).
"""

from __future__ import annotations

import numpy as np
import onnx

from registry import model_json

from ..errors import UnsupportedModelError
from ..manifest import graph_inputs, tensor_specs
from ..verify import Feeds
from .torch_layers import attr

FLOAT = "float32"
INTEGER = ("int64", "int32")


def index_range(model: onnx.ModelProto, name: str) -> tuple[int, int] | None:
    """[0, rows - 1] when every reader of `name` is a Gather (axis 0) taking it as indices into an
    initializer table (the smallest table when several); None when the model does not say."""
    tables = {init.name: list(init.dims) for init in model.graph.initializer}
    readers = [node for node in model.graph.node if name in node.input]
    rows = []
    for node in readers:
        if node.op_type != "Gather" or list(node.input).index(name) != 1 or attr(node, "axis", 0) != 0 or node.input[0] not in tables:
            return None
        rows.append(tables[node.input[0]][0])
    return (0, min(rows) - 1) if rows else None


def data_entries(model: onnx.ModelProto, batch: int) -> list[dict]:
    """model.json's `training.inputs.data`: each model input's dtype, shape at the step's batch, id range."""
    entries = []
    for spec in tensor_specs(graph_inputs(model)):
        name, dtype = spec["name"], spec["dtype"]
        if dtype != FLOAT and dtype not in INTEGER:
            raise UnsupportedModelError(f"input {name!r} is {dtype}: the training step takes float32 values or int64/int32 ids")
        shape = list(spec["shape"])
        if shape and shape[0] is None:
            shape[0] = batch
        elif shape and shape[0] != batch:
            raise UnsupportedModelError(f"input {name!r} has a fixed batch of {shape[0]}: export with --train-batch {shape[0]}")
        if any(dim is None for dim in shape):
            raise UnsupportedModelError(f"input {name!r} has a free axis besides the batch: {spec['shape']}")
        entries.append(model_json.training_data(name, dtype, shape, index_range(model, name) if dtype in INTEGER else None))
    return entries


def ranges(model: onnx.ModelProto, sample: Feeds) -> dict[str, tuple[int, int]]:
    """Per integer input: the ids random batches draw from (the table's rows, else the sample's range)."""
    found = {}
    for name, array in sample.items():
        if np.issubdtype(array.dtype, np.integer):
            found[name] = index_range(model, name) or (int(array.min()), int(array.max()))
    return found


def checked(entry: dict, values: np.ndarray) -> np.ndarray:
    """`values` for the data input `entry` in its dtype; ids must be whole numbers within its `range`
    (a ValueError naming the input otherwise)."""
    array = np.asarray(values)
    if entry.get("dtype", FLOAT) == FLOAT:
        return array.astype(np.float32)
    name = entry["name"]
    if not (np.issubdtype(array.dtype, np.integer) or (np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0))):
        raise ValueError(f"input {name!r} takes {entry['dtype']} ids: got {array.dtype} values that are not whole numbers")
    low, high = entry.get("range", (None, None))
    if low is not None and array.size and (array.min() < low or array.max() > high):
        bad = array[(array < low) | (array > high)].reshape(-1)[0]
        raise ValueError(f"input {name!r}: id {int(bad)} is outside the vocabulary [{low}, {high}]")
    return array.astype(entry["dtype"])
