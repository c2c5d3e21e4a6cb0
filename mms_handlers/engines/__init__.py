"""Inference engines behind one small interface; the archive names which one a model uses."""

from __future__ import annotations

from pathlib import Path

from ..external_data import ExternalDataError, external_files
from .base import Engine, EngineLoadError

DEFAULT_ENGINE = "onnxruntime"
KNOWN_ENGINES = ("onnxruntime", "mxnet")


def load_engine(name: str, model_path: Path) -> Engine:
    """Create the named engine for an ONNX file; engines import their runtime only here.

    Whatever the engine, a tensor whose external data lies outside the model's folder is refused first.
    """
    try:
        external_files(model_path)
    except ExternalDataError as error:
        raise EngineLoadError(str(error)) from None
    if name == "onnxruntime":
        from .ort import OnnxRuntimeEngine

        return OnnxRuntimeEngine(model_path)
    if name == "mxnet":
        from .mxnet_engine import MxnetEngine

        return MxnetEngine(model_path)
    raise EngineLoadError(f"unknown engine {name!r}; known: {', '.join(KNOWN_ENGINES)}")


__all__ = ["DEFAULT_ENGINE", "KNOWN_ENGINES", "Engine", "EngineLoadError", "load_engine"]
