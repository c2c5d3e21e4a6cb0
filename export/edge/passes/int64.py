"""int64 constants ONNX.js cannot read made to fit.

ONNX.js reads int64 tensors by casting each value to 32 bits and throws ("int64 is not
supported") on anything outside the int32 range. Exporters write INT64_MAX as "to the end"
in Slice bounds; clamping those to the int32 range means the same for any real tensor.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ...verify import Feeds

_INT32 = np.iinfo(np.int32)


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    slice_bounds = {name for node in model.graph.node if node.op_type == "Slice" for name in node.input[1:3]}
    changed = False
    for index, init in enumerate(model.graph.initializer):
        if init.data_type != onnx.TensorProto.INT64 or init.name not in slice_bounds:
            continue
        values = numpy_helper.to_array(init)
        if values.size and (values.max() > _INT32.max or values.min() < _INT32.min):
            clamped = np.clip(values, _INT32.min, _INT32.max).astype(np.int64)
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(clamped, init.name))
            changed = True
    return model if changed else None
