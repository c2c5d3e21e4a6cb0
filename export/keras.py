"""Keras 3 (`.keras`) → ONNX through Keras's own `model.export(format="onnx")` (tf2onnx)."""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from .conversion import Conversion
from .errors import BadInputError, ExportError, UnsupportedModelError, one_line
from .graph_names import rename_outputs
from .manifest import graph_inputs, tensor_specs
from .quiet import silenced
from .signature import fit_sample, synthesize_sample
from .train.keras_reference import KerasTrainer
from .verify import Feeds

if TYPE_CHECKING:
    import keras


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    for name in ("tensorflow", "tf2onnx", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)


def load_keras_model(source: Path) -> keras.Model:
    """Load a `.keras` file without its optimizer; a bad file is the user's error."""
    _quiet_tensorflow()
    import keras

    if not source.is_file():
        raise BadInputError(f"model file not found: {source}")
    if not zipfile.is_zipfile(source):
        raise BadInputError(f"cannot load Keras model {source.name}: not a .keras zip archive (corrupt or truncated?)")
    try:
        return keras.saving.load_model(source, compile=False, safe_mode=True)
    except Exception as error:
        raise BadInputError(f"cannot load Keras model {source.name}: {one_line(error)}") from None


class KerasConverter:
    name = "keras"
    suffixes = (".keras",)
    unpickles = False

    def convert(self, source: Path, sample: Feeds | np.ndarray | None, opset: int) -> Conversion:
        model = load_keras_model(source)
        import keras

        specs = [{"name": tensor.name, "dtype": str(tensor.dtype), "shape": list(tensor.shape)} for tensor in model.inputs]
        feeds = fit_sample(sample, specs) if sample is not None else synthesize_sample(specs)
        ordered = [feeds[spec["name"]] for spec in specs]
        try:
            model(ordered if len(ordered) > 1 else ordered[0], training=False)
        except Exception as error:
            raise BadInputError(f"the model cannot run on the sample: {one_line(error)}") from None

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            try:
                with silenced("tensorflow", "tf2onnx"):
                    model.export(str(path), format="onnx", opset_version=opset, verbose=False)
            except Exception as error:
                raise UnsupportedModelError(f"tf2onnx could not convert the model: {one_line(error)}") from None
            onnx_model = onnx.load(str(path))

        output_names = list(getattr(model, "output_names", []) or [])
        onnx_model = rename_outputs(onnx_model, output_names)
        onnx_inputs = [spec["name"] for spec in tensor_specs(graph_inputs(onnx_model))]
        onnx_outputs = [output.name for output in onnx_model.graph.output]
        if len(onnx_inputs) != len(specs):
            raise ExportError(f"the ONNX graph has inputs {onnx_inputs}, the Keras model {[s['name'] for s in specs]}")
        by_onnx_name = dict(zip(onnx_inputs, (spec["name"] for spec in specs)))

        def reference(onnx_feeds: Feeds) -> dict[str, np.ndarray]:
            arrays = [onnx_feeds[name] for name in onnx_inputs]
            result = model(arrays if len(arrays) > 1 else arrays[0], training=False)
            results = result if isinstance(result, (list, tuple)) else [result]
            return {name: np.asarray(value) for name, value in zip(onnx_outputs, results)}

        onnx_feeds = {onnx_name: feeds[keras_name] for onnx_name, keras_name in by_onnx_name.items()}
        return Conversion(
            model=onnx_model,
            reference=reference,
            sample=onnx_feeds,
            framework="keras",
            framework_version=keras.__version__,
            trainer=KerasTrainer(model, onnx_inputs, onnx_outputs),
        )
