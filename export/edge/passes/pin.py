"""Free input dimensions pinned to the sample's, so shape arithmetic becomes constant.

Imported files (Paddle's `?`-sized images, a VAD's free sequence length) compute Reshape targets,
zero states and branch conditions from `Shape` of inputs with free dimensions; ONNX.js has no
Shape, Cast, Range, ConstantOfShape or Expand on cpu. With every input dimension fixed to the
sample's, onnxsim (the next pass) folds those subgraphs to constants. Only a model with a free
dimension besides the leading (batch) one is pinned, and then wholly, batch included: the
browser file then takes exactly the sample's shapes, which model.json records under
`edge.inputs` so the page sends any other shape to the cloud. Models free only in the batch keep
it free (`static-batch-shapes` handles them).
"""

from __future__ import annotations

import onnx

from ...verify import Feeds
from ..graph import fixed_except_batch

# Shape arithmetic no ONNX.js backend runs; left after `static-batch-shapes`, it follows the batch.
SHAPE_OPS = {"Shape", "Size", "ConstantOfShape", "Range", "Expand", "Cast", "Equal", "If", "Where"}


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    """Pin every input dimension, when one besides the batch is free."""
    if fixed_except_batch(model):
        return None
    return _pin(model, sample)


def run_batch(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    """Pin the batch too, when shape arithmetic over it survived `static-batch-shapes`."""
    if not any(node.op_type in SHAPE_OPS for node in model.graph.node):
        return None
    return _pin(model, sample)


def _pin(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    changed = False
    initializers = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers or value.name not in sample:
            continue
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(dims, sample[value.name].shape):
            if not dim.HasField("dim_value"):
                dim.Clear()
                dim.dim_value = int(size)
                changed = True
    if not changed:
        return None
    del model.graph.value_info[:]  # inferred for free dims; onnxsim infers them again
    for output in model.graph.output:
        for dim in output.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.Clear()
    return model
