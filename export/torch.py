"""PyTorch → ONNX: exported programs (`.pt2`), TorchScript files (`.pt`/`.pth`) and live `nn.Module`s.

All three go through the TorchScript exporter (`torch.onnx.export(dynamo=False)`), not the
dynamo one: it writes the requested opset (≤ 17) directly in about 0.1 s, while the dynamo
exporter builds opset 18 and relies on onnx's version converter to come down, which fails on
plain models (no Relu-14 → 13 adapter), and it cannot take a TorchScript file at all.
`dynamic_axes` marks the first (batch) axis of every input and output free. An exported
program is run through its `module()` inside a thin wrapper (its graph module refuses
`.train(False)`, which the exporter calls).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import onnx

from .conversion import Conversion, default_output_names, flat_outputs
from .errors import BadInputError, UnsupportedModelError, one_line
from .quiet import silenced
from .signature import fit_sample, name_sample, synthesize_sample
from .train.torch_reference import TorchTrainer
from .verify import Feeds

_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "torch.fx")


def _framework_version() -> str:
    import torch

    return torch.__version__


def _as_float32(feeds: Feeds) -> Feeds:
    """`np.save` writes float64 by default; PyTorch weights are float32."""
    return {name: a.astype(np.float32) if a.dtype == np.float64 else a for name, a in feeds.items()}


def _forward(forward: Callable, feeds: Feeds, names: Sequence[str]) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        results = flat_outputs(forward(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names)))
    return [result.detach().numpy() for result in results]


def _runner(forward: Callable, input_names: Sequence[str], output_names: Sequence[str]):
    def run(feeds: Feeds) -> dict[str, np.ndarray]:
        return dict(zip(output_names, _forward(forward, feeds, input_names)))

    return run


def _run_sample(forward: Callable, feeds: Feeds, names: Sequence[str]) -> int:
    """Run the model once on the sample; a failure is the sample's (or the model's) fault. Returns #outputs."""
    try:
        with silenced(*_LOGGERS):
            return len(_forward(forward, feeds, names))
    except Exception as error:
        raise BadInputError(f"the model cannot run on the sample: {one_line(error)}") from None


def _torchscript_to_onnx(module: Any, feeds: Feeds, input_names: list[str], output_names: list[str], opset: int) -> onnx.ModelProto:
    import torch

    if opset > 17:
        raise BadInputError(f"--opset {opset}: the TorchScript exporter writes opset 17 at most")
    buffer = io.BytesIO()
    free_batch = {name: {0: "batch"} for name in [*input_names, *output_names]}
    args = tuple(torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in input_names)
    try:
        with silenced(*_LOGGERS):
            torch.onnx.export(
                module,
                args,
                buffer,
                dynamo=False,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=free_batch,
            )
    except Exception as error:
        raise UnsupportedModelError(f"torch.onnx cannot convert the model: {one_line(error)}") from None
    return onnx.load_from_string(buffer.getvalue())


def convert_module(
    module: Any, sample: Any, opset: int, input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None
) -> Conversion:
    """An `nn.Module` or TorchScript module plus a sample → Conversion (TorchScript exporter)."""
    module.eval()
    if input_names is None and isinstance(sample, dict):
        input_names = list(sample)
    elif input_names is None:
        count = len(sample) if isinstance(sample, (tuple, list)) else 1
        input_names = ["input"] if count == 1 else [f"input_{i}" for i in range(count)]
    feeds = _as_float32(name_sample(_as_numpy(sample, list(input_names)), list(input_names)))
    count = _run_sample(module, feeds, list(input_names))
    names = list(output_names) if output_names else default_output_names(count)
    if len(names) != count:
        raise BadInputError(f"the model returns {count} outputs, {len(names)} output names were given")
    model = _torchscript_to_onnx(module, feeds, list(input_names), names, opset)
    runner = _runner(module, list(input_names), names)
    trainer = TorchTrainer(module, list(input_names), names)
    return Conversion(model, runner, feeds, "torch", _framework_version(), trainer=trainer)


def _as_numpy(sample: Any, names: list[str]) -> dict[str, np.ndarray] | np.ndarray:
    """Tensors, arrays, a tuple of them or a dict by name → numpy, keyed the way `name_sample` takes."""

    def to_array(value: Any) -> np.ndarray:
        return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)

    if isinstance(sample, dict):
        return {name: to_array(value) for name, value in sample.items()}
    if isinstance(sample, (tuple, list)):
        if len(sample) != len(names):
            raise BadInputError(f"the sample has {len(sample)} tensors, the model takes {len(names)} inputs ({', '.join(names)})")
        return {name: to_array(value) for name, value in zip(names, sample)}
    return to_array(sample)


def _load_torchscript(source: Path) -> Any:
    import torch

    try:
        with silenced(*_LOGGERS):
            return torch.jit.load(str(source), map_location="cpu")
    except Exception as error:
        raise BadInputError(
            f"cannot load TorchScript model {source.name}: {one_line(error)} "
            "(.pt/.pth must be written by torch.jit.save; for a plain nn.Module use export.torch_module.export_torch_module)"
        ) from None


def _torchscript_input_names(module: Any) -> list[str]:
    return [argument.name for argument in module.forward.schema.arguments[1:]]


def _convert_torchscript(source: Path, sample: Any, opset: int) -> Conversion:
    module = _load_torchscript(source)
    names = _torchscript_input_names(module)
    if sample is None:
        raise BadInputError(f"{source.name}: a TorchScript file records no input shapes: pass --sample")
    return convert_module(module, sample, opset, input_names=names)


def _exported_program_specs(program: Any) -> list[dict[str, Any]]:
    import torch

    user_inputs = set(program.graph_signature.user_inputs)
    specs = []
    for node in program.graph.nodes:
        if node.op != "placeholder" or node.name not in user_inputs:
            continue
        value = node.meta.get("val")
        if not isinstance(value, torch.Tensor):
            raise BadInputError(f"input {node.name!r} is not a tensor; only tensor inputs can be exported")
        shape = [int(dim) if isinstance(dim, int) else None for dim in value.shape]
        dtype = str(torch.empty(0, dtype=value.dtype).numpy().dtype)
        specs.append({"name": node.name, "dtype": dtype, "shape": shape})
    return specs


def _exportable_program(graph_module: Any) -> Any:
    """An exported program's graph module in a wrapper whose `.train()` stops at the wrapper."""
    from torch import nn

    class ProgramModule(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.program = graph_module

        def train(self, mode: bool = True) -> "ProgramModule":
            self.training = mode
            return self

        def forward(self, *inputs: Any) -> Any:
            return self.program(*inputs)

    return ProgramModule()


def _convert_exported_program(source: Path, sample: Any, opset: int) -> Conversion:
    import torch

    try:
        with silenced(*_LOGGERS):
            program = torch.export.load(str(source))
    except Exception as error:
        raise BadInputError(f"cannot load exported program {source.name}: {one_line(error)}") from None
    specs = _exported_program_specs(program)
    feeds = fit_sample(sample, specs) if sample is not None else synthesize_sample(specs)
    names = [spec["name"] for spec in specs]
    return convert_module(_exportable_program(program.module()), feeds, opset, input_names=names)


class TorchConverter:
    name = "torch"
    suffixes = (".pt2", ".pt", ".pth")
    unpickles = False

    def convert(self, source: Path, sample: Feeds | np.ndarray | None, opset: int) -> Conversion:
        if source.name.lower().endswith(".pt2"):
            return _convert_exported_program(source, sample, opset)
        return _convert_torchscript(source, sample, opset)
