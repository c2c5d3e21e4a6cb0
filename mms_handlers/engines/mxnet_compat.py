"""Every shim MXNet 1.9.1 needs in this environment, in one place.

- numpy ≥ 1.24 dropped `numpy.bool`, which `import mxnet` still uses: alias it first.
- `mxnet.contrib.onnx.import_model` only finds weights listed as graph inputs, which modern
  exporters no longer do: list every initializer as an input on a copy of the model.
- Its converter fails with KeyErrors and the like that do not say where: name the operator.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy
import onnx

from .base import EngineLoadError


def import_mxnet() -> ModuleType:
    if "bool" not in vars(numpy):  # hasattr() would trip numpy's FutureWarning for np.bool
        numpy.bool = bool  # type: ignore[attr-defined]
    try:
        with warnings.catch_warnings():  # MXNet 1.9 trips numpy/scipy/distutils deprecations on import
            warnings.simplefilter("ignore", DeprecationWarning)
            import mxnet
    except ImportError as error:
        raise EngineLoadError(f"the mxnet engine needs the mxnet package (pip install 'onnx-edgecloud[mxnet]'): {error}") from None
    return mxnet


def with_initializers_as_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose graph inputs also list every initializer (what the old importer expects)."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    listed = {value.name for value in fixed.graph.input}
    for init in fixed.graph.initializer:
        if init.name not in listed:
            fixed.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return fixed


def import_onnx(model_path: Path) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(symbol, arg_params, aux_params), or EngineLoadError naming the first operator MXNet cannot take."""
    mxnet = import_mxnet()
    from mxnet.contrib.onnx.onnx2mx.import_onnx import GraphProto

    model = with_initializers_as_inputs(onnx.load(str(model_path)))
    original = GraphProto._convert_operator

    def convert_naming_the_operator(self: Any, node_name: Any, op_name: Any, attrs: Any, inputs: Any) -> Any:
        try:
            return original(self, node_name, op_name, attrs, inputs)
        except Exception as error:  # noqa: BLE001 - any converter failure becomes one clear line
            detail = str(error) or type(error).__name__
            node = f" (node {node_name!r})" if node_name else ""
            raise EngineLoadError(f"MXNet {mxnet.__version__} cannot import operator {op_name}{node}: {detail}") from None

    GraphProto._convert_operator = convert_naming_the_operator
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fixed_path = Path(tmp) / "model.onnx"
            onnx.save(model, str(fixed_path))
            return mxnet.contrib.onnx.import_model(str(fixed_path))
    except EngineLoadError:
        raise
    except Exception as error:  # noqa: BLE001 - outside a node conversion (graph-level problems)
        raise EngineLoadError(f"MXNet cannot import {Path(model_path).name}: {type(error).__name__}: {error}") from None
    finally:
        GraphProto._convert_operator = original
