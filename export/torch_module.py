"""Export a live PyTorch `nn.Module` (no file) through the same pipeline as `edgecloud export`.

Apart from export/torch.py because it drives the pipeline, which picks converters: the converter
module itself stays a leaf the pipeline imports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from .parity import Criterion
from .pipeline import ExportResult, check_target, publish
from .torch import convert_module
from .train.spec import DEFAULT_BATCH, DEFAULT_OPTIMIZER, TrainingOptions
from .verify import DEFAULT_TOLERANCE


def export_torch_module(
    module: Any,
    sample: Any,
    *,
    name: str,
    version: str,
    out: Path,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    opset: int = 13,
    tolerance: Criterion | float = DEFAULT_TOLERANCE,
    force: bool = False,
    trainable: str | None = None,
    loss: str | None = None,
    optimizer: str = DEFAULT_OPTIMIZER,
    learning_rate: float | None = None,
    train_batch: int = DEFAULT_BATCH,
    progress: Callable[[str], None] = lambda message: None,
) -> ExportResult:
    """Export a live `nn.Module` into the registry exactly like `edgecloud export` does for files.

    `sample` is a tensor/array, a tuple of them (one per forward argument) or a dict by input
    name; its first axis is the batch and becomes free in the ONNX graph. Returns the
    pipeline's `ExportResult` (version folder + model.json contents). The training-step options
    are `export_model`'s (docs/training.md).
    """
    training = TrainingOptions(trainable, loss, optimizer, learning_rate, train_batch).check()
    version_dir = check_target(name, version, out, force)
    progress(f"converting {type(module).__name__} with the torch converter (opset {opset})")
    conversion = convert_module(module, sample, opset, input_names, output_names)
    return publish(
        conversion,
        version_dir,
        source_file=f"{type(module).__name__} (nn.Module)",
        tolerance=tolerance,
        training=training,
        progress=progress,
    )
