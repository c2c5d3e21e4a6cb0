"""The one small interface every framework converter implements, and what it hands over.

A leaf: the converters import it, and converter.py (which picks one) imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import onnx

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
    # What the converter accepted with a doubt (model.json `source.warnings`, printed by export).
    warnings: list[str] = field(default_factory=list)


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
