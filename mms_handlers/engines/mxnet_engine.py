"""MXNet as an engine, best effort: ONNX → MXNet symbol through MXNet's own ONNX importer.

MXNet 1.9's importer covers classic operators (Gemm, MatMul, Conv, Relu, ...) but not newer
ones (Squeeze-13, Expand, ConstantOfShape, ai.onnx.ml); such a model fails at load, so its
registration fails with the operator's name.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping

import numpy as np
import onnx

from .mxnet_compat import import_mxnet, import_onnx


class MxnetEngine:
    name = "mxnet"

    def __init__(self, model_path: Path) -> None:
        mx = import_mxnet()
        symbol, arg_params, aux_params = import_onnx(model_path)
        graph = onnx.load(str(model_path), load_external_data=False).graph
        weights = {init.name for init in graph.initializer}
        self.input_names = [value.name for value in graph.input if value.name not in weights]
        self.output_names = [value.name for value in graph.output]
        self._mx = mx
        with warnings.catch_warnings():  # "cannot decide type" for inputs: they are typed per run
            warnings.simplefilter("ignore", UserWarning)
            self.block = mx.gluon.SymbolBlock(outputs=symbol, inputs=[mx.sym.var(name) for name in self.input_names])
        params = self.block.collect_params()
        for name, value in {**arg_params, **aux_params}.items():
            if name in params:
                params[name]._load_init(value, mx.cpu())

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = [self._mx.nd.array(feeds[name], dtype=feeds[name].dtype) for name in self.input_names]
        result = self.block(*arrays)
        results = result if isinstance(result, (list, tuple)) else [result]
        return {name: value.asnumpy() for name, value in zip(self.output_names, results)}
