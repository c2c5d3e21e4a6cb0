"""How a framework converter is picked: by name, or by the file's type."""

from __future__ import annotations

from pathlib import Path

from .conversion import Converter
from .errors import BadInputError


def _registry() -> dict[str, Converter]:
    # Imported lazily: each converter pulls in its (heavy, optional) framework only when used.
    from . import keras, mxnet, onnx_file, sklearn, torch

    converters: list[Converter] = [
        keras.KerasConverter(),
        torch.TorchConverter(),
        sklearn.SklearnConverter(),
        mxnet.MxnetConverter(),
        onnx_file.OnnxConverter(),
    ]
    return {converter.name: converter for converter in converters}


def framework_names() -> list[str]:
    return sorted(_registry())


def pick(framework: str, source: Path) -> Converter:
    """The converter named by `framework`, or for `auto` the one whose file type matches."""
    converters = _registry()
    if framework != "auto":
        if framework not in converters:
            raise BadInputError(f"unknown framework {framework!r}; choose one of: auto, {', '.join(sorted(converters))}")
        return converters[framework]
    name = source.name.lower()
    for converter in converters.values():
        if any(name.endswith(suffix) for suffix in converter.suffixes):
            return converter
    known = ", ".join(f"{s} ({c.name})" for c in converters.values() for s in c.suffixes)
    raise BadInputError(f"cannot tell the framework of {source.name}; known file types: {known}; or pass --framework")
