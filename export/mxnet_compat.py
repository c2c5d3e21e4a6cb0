"""Every shim MXNet 1.9.1 needs on this stack, in one place (see ../shared/STACK_FACTS.md).

MXNet's last release predates numpy 1.24 and onnx 1.19:
- `import mxnet` reads `numpy.bool` (removed in numpy 1.24): alias it to `bool` first;
- `mx.onnx.export_model` imports `onnx.mapping` (removed in onnx 1.19): a stand-in module
  with the two tables it reads is installed for the duration of an export;
- it asks `onnx.defs.onnx_opset_version()` for the opset to write and knows ops up to 13
  only: held at 13 during the export;
- `helper.make_model` stamps the newest IR version, which onnxruntime refuses: set to 8.
"""

from __future__ import annotations

import contextlib
import sys
import types
from typing import Any, Iterator

import numpy as np
import onnx

EXPORT_OPSET = 13
EXPORT_IR_VERSION = 8


def import_mxnet() -> Any:
    """`import mxnet` with numpy ≥ 1.24."""
    if "bool" not in vars(np):  # hasattr() would trip numpy's FutureWarning
        np.bool = bool  # type: ignore[attr-defined]
    import mxnet

    return mxnet


def _mapping_module() -> types.ModuleType:
    to_numpy = {}
    for code in onnx.TensorProto.DataType.values():
        try:
            to_numpy[code] = onnx.helper.tensor_dtype_to_np_dtype(code)
        except (KeyError, ValueError, TypeError):
            continue
    module = types.ModuleType("onnx.mapping")
    module.TENSOR_TYPE_TO_NP_TYPE = to_numpy  # type: ignore[attr-defined]
    module.NP_TYPE_TO_TENSOR_TYPE = {  # type: ignore[attr-defined]
        dtype: code for code, dtype in sorted(to_numpy.items(), reverse=True) if dtype != np.dtype(object)
    }
    module.NP_TYPE_TO_TENSOR_TYPE[np.dtype(object)] = onnx.TensorProto.STRING  # type: ignore[attr-defined]
    return module


@contextlib.contextmanager
def export_shims() -> Iterator[None]:
    """`onnx.mapping` present and the opset held at 13 while `mx.onnx.export_model` runs."""
    had_mapping = hasattr(onnx, "mapping")
    saved_opset = onnx.defs.onnx_opset_version
    if not had_mapping:
        onnx.mapping = _mapping_module()  # type: ignore[attr-defined]
        sys.modules["onnx.mapping"] = onnx.mapping  # type: ignore[attr-defined]
    onnx.defs.onnx_opset_version = lambda: EXPORT_OPSET
    try:
        yield
    finally:
        onnx.defs.onnx_opset_version = saved_opset
        if not had_mapping:
            del onnx.mapping  # type: ignore[attr-defined]
            sys.modules.pop("onnx.mapping", None)


def fix_ir_version(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime 1.31 reads IR ≤ 13; MXNet's export leaves the newest stamp."""
    model.ir_version = EXPORT_IR_VERSION
    return model
