"""Lower a model to what ONNX.js 0.1.8 runs: apply the passes in order, keep each only if its
result still matches the unlowered model under onnxruntime, then name what still blocks ONNX.js.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import onnx

from ..errors import one_line
from ..first_difference import first_differing_operator
from ..manifest import default_opset
from ..parity import Criterion, as_criterion
from ..verify import DEFAULT_TOLERANCE, Feeds, Runner, accepted_inputs, compare, onnxruntime_runner, parity_inputs, remembered
from .graph import batch_variant, remove_dead
from .passes import (
    activations,
    constant_if,
    conv1d,
    conv_batch,
    conv_transpose,
    expand,
    fold,
    gather,
    int64,
    integer_equal,
    loop,
    ml_linear,
    names,
    opset,
    pin,
    recurrent,
    relu_mask,
    resize,
    slice_concat,
    softmax,
    split,
    stack,
)
from .rules import BACKENDS, blocker_summary

Pass = Callable[[onnx.ModelProto, Feeds], "onnx.ModelProto | None"]

# Order matters: structure first (at the exporter's opset), then folding, then the opset drop
# that moves axes inputs to attributes, then the int64 clean-up of what is left.
PASSES: list[tuple[str, Pass]] = [
    ("ml-linear-to-onnx", ml_linear.run),
    ("pin-free-dims", pin.run),
    ("constant-if", constant_if.run),
    ("fold-constants", fold.simplify),
    ("static-batch-shapes", fold.static_shapes),
    ("unroll-loop", loop.run),
    ("unroll-recurrent", recurrent.run),
    ("slice-of-concat", slice_concat.run),
    ("stack-without-unsqueeze", stack.run),
    ("conv1d-to-2d", conv1d.run),
    ("conv-batch-as-height", conv_batch.run),
    ("split-to-slice", split.run),
    ("expand-to-add", expand.run),
    ("relu-mask-to-sign", relu_mask.run),
    ("pin-batch", pin.run_batch),
    ("fold-constants-again", fold.simplify),
    ("static-batch-shapes-again", fold.static_shapes),
    # After onnxsim, which fuses Log(Softmax) back into LogSoftmax and Slice+Squeeze into Gather:
    ("gather-scalar-to-slice", gather.run),
    ("softmax-last-axis", softmax.run),
    ("hard-activations-and-pow", activations.run),
    ("nearest-resize-to-tile", resize.run),
    ("conv-transpose-to-depth-to-space", conv_transpose.run),
    ("integer-equal-to-gather", integer_equal.run),
    ("integer-reshape-to-unsqueeze", integer_equal.reshape_to_unsqueeze),
    ("opset-down", opset.run),
    ("int64-to-int32-range", int64.run),
    ("unique-node-names", names.run),
]
PARITY_RANDOM_INPUTS = 8


@dataclass
class Lowering:
    """The lowered model and what happened on the way."""

    model: onnx.ModelProto
    changed: bool
    passes: list[dict[str, Any]] = field(default_factory=list)
    blockers: dict[str, list[str]] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)

    @property
    def backends(self) -> list[str]:
        return [backend for backend in BACKENDS if not self.blockers.get(backend)]

    @property
    def runtime(self) -> str:
        return "onnxjs" if self.backends else "onnxruntime-web"


def check_inputs(model: onnx.ModelProto, sample: Feeds, count: int = PARITY_RANDOM_INPUTS, reference: Runner | None = None) -> list[Feeds]:
    """The sample, random inputs like it (that `reference` accepts), and a batch of three when the batch axis is free."""
    inputs = accepted_inputs(reference, sample, count)[0] if reference else parity_inputs(sample, count=count)
    batched = batch_variant(inputs[1] if len(inputs) > 1 else sample, model)
    return inputs + ([batched] if batched is not None else [])


def fitting(model: onnx.ModelProto, inputs: list[Feeds]) -> list[Feeds]:
    """The inputs whose shapes the model's (possibly pinned) input dimensions accept."""
    fixed = {
        value.name: [dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim]
        for value in model.graph.input
    }

    def fits(feeds: Feeds) -> bool:
        return all(
            name not in fixed or all(want in (None, got) for want, got in zip(fixed[name], array.shape)) for name, array in feeds.items()
        )

    return [feeds for feeds in inputs if fits(feeds)]


def lower(
    model: onnx.ModelProto, sample: Feeds, tolerance: Criterion | float = DEFAULT_TOLERANCE, inputs: list[Feeds] | None = None
) -> Lowering:
    """Run every pass; a pass that fails or breaks parity is recorded and skipped.

    `inputs` replaces the random inputs parity is checked on, for graphs whose inputs random
    values would not exercise faithfully (a training step's step number and weights).
    """
    tolerance = as_criterion(tolerance)
    reference = remembered(onnxruntime_runner(model))
    inputs = check_inputs(model, sample, reference=reference) if inputs is None else inputs
    current = model
    records: list[dict[str, Any]] = []
    worst, ratio = 0.0, 0.0
    for name, run in PASSES:
        before = default_opset(current)
        try:
            candidate = run(copy.deepcopy(current), sample)
            if candidate is None:
                continue
            remove_dead(candidate)
            onnx.checker.check_model(candidate)
            # A pinned file takes only the sample's shapes (model.json records them): it is held to
            # the inputs of those shapes, never to fewer than the sample and its random twins.
            report = compare(reference, onnxruntime_runner(candidate), fitting(candidate, inputs), tolerance)
        except Exception as error:  # noqa: BLE001 - a pass that cannot apply is reported, not fatal
            records.append({"name": name, "applied": False, "reason": one_line(error)[:300]})
            continue
        record: dict[str, Any] = {
            "name": name,
            "applied": report.passed,
            "max_abs_diff": report.max_abs_diff,
            "ratio": report.as_json()["ratio"],
        }
        if default_opset(candidate) != before:
            record["opset"] = [before, default_opset(candidate)]
        if report.passed:
            current, worst, ratio = candidate, max(worst, report.max_abs_diff), max(ratio, report.ratio)
        else:
            record["reason"] = (
                f"parity: output {report.worst_output!r} differs by {report.per_output[report.worst_output]:.3g}, "
                f"{report.ratio:.3g}x what {tolerance.describe()} allows"
            )
            culprit = first_differing_operator(current, candidate, fitting(candidate, inputs), tolerance)
            if culprit:
                record["first_difference"] = culprit
        records.append(record)
    changed = current is not model
    parity = {"max_abs_diff": worst, "ratio": ratio, "inputs_compared": len(inputs), "criterion": tolerance.as_json(), "passed": True}
    return Lowering(model=current, changed=changed, passes=records, blockers=blocker_summary(current), parity=parity)


__all__ = ["Lowering", "PASSES", "check_inputs", "lower"]
