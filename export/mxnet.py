"""MXNet Gluon (`NAME-symbol.json` + `NAME-EPOCH.params`, as `HybridBlock.export` writes them) → ONNX.

The CLI takes the `-symbol.json` path; the parameters are the `.params` file beside it with
the same prefix (the highest epoch when there are several). MXNet's exporter writes opset 13;
another `--opset` is reached with onnx's version converter. The symbol file records no input
shapes, so `--sample` is required; the sample's first axis becomes the free batch axis.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .conversion import Conversion, default_output_names, flat_outputs
from .errors import BadInputError, UnsupportedModelError, one_line
from .graph_names import rename_outputs
from .mxnet_compat import EXPORT_OPSET, export_shims, fix_ir_version, import_mxnet
from .quiet import silenced
from .signature import name_sample
from .verify import Feeds

SYMBOL_SUFFIX = "-symbol.json"


def params_file(symbol_file: Path) -> Path:
    """`NAME-symbol.json` → `NAME-EPOCH.params` (highest epoch) or `NAME.params` beside it."""
    prefix = symbol_file.name[: -len(SYMBOL_SUFFIX)]
    candidates = sorted(symbol_file.parent.glob(f"{prefix}-*.params")) or sorted(symbol_file.parent.glob(f"{prefix}.params"))
    if not candidates:
        raise BadInputError(f"no parameters for {symbol_file.name}: expected {prefix}-0000.params beside it")
    return candidates[-1]


def _input_names(mx: Any, symbol_file: Path, params: dict[str, Any]) -> list[str]:
    try:
        symbol = mx.sym.load(str(symbol_file))
    except Exception as error:
        raise BadInputError(f"cannot load MXNet symbol {symbol_file.name}: {one_line(error)}") from None
    return [name for name in symbol.list_inputs() if name not in params and not name.endswith("_label")]


def _load_params(mx: Any, path: Path) -> dict[str, Any]:
    try:
        loaded = mx.nd.load(str(path))
    except Exception as error:
        raise BadInputError(f"cannot load MXNet parameters {path.name}: {one_line(error)}") from None
    if not isinstance(loaded, dict):  # a block without parameters saves an empty list
        if loaded:
            raise BadInputError(f"{path.name} holds unnamed arrays, not Gluon parameters")
        return {}
    # Gluon exports and Module checkpoints prefix names with "arg:"/"aux:".
    return {name.split(":", 1)[-1]: value for name, value in loaded.items()}


class MxnetConverter:
    name = "mxnet"
    suffixes = (SYMBOL_SUFFIX,)
    unpickles = False

    def convert(self, source: Path, sample: Feeds | np.ndarray | None, opset: int) -> Conversion:
        if not source.name.endswith(SYMBOL_SUFFIX):
            raise BadInputError(f"{source.name}: give the MXNet model as its NAME{SYMBOL_SUFFIX} file")
        with silenced("mxnet"):
            mx = import_mxnet()
        params_path = params_file(source)
        params = _load_params(mx, params_path)
        names = _input_names(mx, source, params)
        if sample is None:
            raise BadInputError(f"{source.name}: an MXNet symbol file records no input shapes: pass --sample")
        feeds = {
            name: array.astype(np.float32) if array.dtype == np.float64 else array for name, array in name_sample(sample, names).items()
        }
        try:
            with silenced("mxnet"):
                block = mx.gluon.SymbolBlock.imports(str(source), names, str(params_path))
                results = flat_outputs(block(*(mx.nd.array(feeds[n], dtype=feeds[n].dtype) for n in names)))
        except Exception as error:
            raise BadInputError(f"the model cannot run on the sample: {one_line(error)}") from None

        model = _export(mx, source, params_path, feeds, names)
        if opset != EXPORT_OPSET:
            try:
                model = onnx.version_converter.convert_version(model, opset)
            except Exception as error:
                raise BadInputError(
                    f"--opset {opset}: MXNet writes opset {EXPORT_OPSET} and onnx's version converter cannot bring "
                    f"this graph to {opset} ({one_line(error).split(': ')[-1]})"
                ) from None
        output_names = default_output_names(len(results))
        model = rename_outputs(model, output_names)
        _fix_output_shapes(model, [result.shape for result in results])

        def reference(onnx_feeds: Feeds) -> dict[str, np.ndarray]:
            arrays = (mx.nd.array(onnx_feeds[n], dtype=onnx_feeds[n].dtype) for n in names)
            return {name: value.asnumpy() for name, value in zip(output_names, flat_outputs(block(*arrays)))}

        return Conversion(model, reference, feeds, "mxnet", mx.__version__)


def _export(mx: Any, source: Path, params_path: Path, feeds: Feeds, names: list[str]) -> onnx.ModelProto:
    shapes = [feeds[name].shape for name in names]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            with export_shims(), silenced("mxnet", "root"):
                mx.onnx.export_model(
                    str(source),
                    str(params_path),
                    in_shapes=shapes,
                    in_types=[feeds[n].dtype for n in names],
                    onnx_file_path=str(path),
                    dynamic=True,
                    dynamic_input_shapes=[(None, *shape[1:]) for shape in shapes],
                )
        except Exception as error:
            raise UnsupportedModelError(f"MXNet's ONNX exporter cannot convert the model: {one_line(error)}") from None
        return fix_ir_version(onnx.load(str(path)))


def _fix_output_shapes(model: onnx.ModelProto, shapes: list[tuple[int, ...]]) -> None:
    """MXNet's `dynamic=True` frees every output axis; only the batch axis is free."""
    for output, shape in zip(model.graph.output, shapes):
        dims = output.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            continue
        for dim, size in list(zip(dims, shape))[1:]:
            dim.Clear()
            dim.dim_value = int(size)
