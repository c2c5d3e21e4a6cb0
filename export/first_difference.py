"""Which operator first computes something else? The intermediate-value bisection, automated.

Two graphs that should compute the same thing (a model and its lowered file; a file under
onnxruntime and under a browser runtime) share most value names. `exposed` makes every named
intermediate value a graph output; running both and judging each shared value with the parity
criterion, in the candidate's node order, names the first node whose output differs: the
operator to blame, in words, instead of "MISMATCH".

onnx's own tools (onnx.utils.Extractor) cut sub-models, one per value, which would mean one
session per node; exposing everything once costs one run per graph.
"""

from __future__ import annotations

import onnx

from .parity import DEFAULT, Criterion
from .verify import Feeds, Runner, onnxruntime_runner

FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)


def exposed(model: onnx.ModelProto, floats_only: bool = False) -> onnx.ModelProto:
    """The same model with every typed intermediate tensor of the main graph as an extra output
    (`floats_only`: float tensors only, for a runtime such as ONNX.js that returns no int64)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - without inference only values already typed are exposed
        inferred = model
    result = onnx.ModelProto()
    result.CopyFrom(inferred)
    present = {value.name for value in result.graph.output}
    typed = {
        value.name: value
        for value in inferred.graph.value_info
        if value.type.WhichOneof("value") == "tensor_type" and (not floats_only or value.type.tensor_type.elem_type in FLOATS)
    }
    for node in result.graph.node:
        for name in node.output:
            if name and name not in present and name in typed:
                result.graph.output.append(typed[name])
                present.add(name)
    return result


def first_difference(
    reference: Runner, candidate: Runner, candidate_model: onnx.ModelProto, feeds: Feeds, criterion: Criterion = DEFAULT
) -> str | None:
    """'OpType node NAME (output VALUE, |diff| D)' for the first node of `candidate_model` whose output,
    under the same value name in the reference, fails `criterion` on `feeds`; None if none does.

    `reference` and `candidate` must run exposed models (every intermediate value an output)."""
    want, got = reference(feeds), candidate(feeds)
    for node in candidate_model.graph.node:
        for name in node.output:
            if name in want and name in got:
                figure = criterion.judge(want[name], got[name])
                if not figure.passed:
                    label = f" {node.name!r}" if node.name else ""
                    return f"{node.op_type}{label} (output {name!r}, |diff| {figure.max_abs_diff:.3g})"
    return None


def first_differing_operator(
    reference_model: onnx.ModelProto, candidate_model: onnx.ModelProto, inputs: list[Feeds], criterion: Criterion = DEFAULT
) -> str | None:
    """`first_difference` with both models under onnxruntime, over `inputs` until one differs."""
    try:
        reference, candidate = onnxruntime_runner(exposed(reference_model)), onnxruntime_runner(exposed(candidate_model))
        for feeds in inputs:
            found = first_difference(reference, candidate, candidate_model, feeds, criterion)
            if found:
                return found
    except Exception:  # noqa: BLE001 - the bisection explains a failure; it never adds one
        return None
    return None
