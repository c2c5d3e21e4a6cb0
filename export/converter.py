"""The one small interface every framework converter implements, and how one is picked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import onnx

from .errors import BadInputError
from .verify import Feeds, Runner

if TYPE_CHECKING:
    from .train.reference import Trainer


@dataclass
class Conversion:
    """What a converter hands to the pipeline: the graph and a way to run the original."""

    model: onnx.ModelProto
    reference: Runner
    sample: Feeds
    framework: str
    framework_version: str
    # The source framework's own training (Keras, PyTorch), for the training step's parity; None: no step.
    trainer: Trainer | None = None


def flat_outputs(result: Any) -> list[Any]:
    """A forward pass's result (a tensor, or nested tuples/lists of them) as a flat list."""
    if isinstance(result, (tuple, list)):
        return [tensor for item in result for tensor in flat_outputs(item)]
    return [result]


def default_output_names(count: int) -> list[str]:
    """Names for outputs a framework leaves unnamed (PyTorch, MXNet)."""
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


class Converter(Protocol):
    """A framework's exporter: a saved model file (plus an optional sample) → `Conversion`."""

    name: str
    suffixes: tuple[str, ...]
    # True when loading the file unpickles it (runs code it holds): the pipeline then asks for trust.
    unpickles: bool

    def convert(self, source: Path, sample: Feeds | None, opset: int) -> Conversion: ...


def _registry() -> dict[str, Converter]:
    # Imported lazily: each converter pulls in its (heavy, optional) framework only when used.
    from . import keras, mxnet, sklearn, torch

    converters: list[Converter] = [
        keras.KerasConverter(),
        torch.TorchConverter(),
        sklearn.SklearnConverter(),
        mxnet.MxnetConverter(),
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
