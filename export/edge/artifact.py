"""What the registry keeps for the browser: the lowered file (when it differs) and model.json's `edge`.

The default is one file for both sides. When lowering changed the graph, the cloud keeps the
exporter's `model.onnx` (onnxruntime runs it natively and faster) and the browser gets
`model.edge.onnx`, with its own hash and parity figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from registry import model_json

from ..manifest import default_opset, file_entry, graph_inputs, tensor_specs
from ..verify import DEFAULT_TOLERANCE, Feeds, Runner, compare, onnxruntime_runner, require
from .lowering import Lowering, lower
from .rules import blocker_summary

EDGE_FILE = "model.edge.onnx"


def edge_variant(
    model: onnx.ModelProto,
    sample: Feeds,
    reference: Runner,
    inputs: list[Feeds],
    folder: Path,
    cloud_file: str,
    *,
    enabled: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Lower `model`, write `EDGE_FILE` into `folder` if it differs; return (extra files, `edge` entry).

    `reference` runs the source framework and `inputs` are the export's parity inputs, so the
    browser file is held to the same proof as the cloud file. A model ONNX.js already runs as
    exported is left alone: one file serves both sides.
    """
    blockers = blocker_summary(model)
    if enabled and any(blockers.values()):
        lowering = lower(model, sample, tolerance)
    else:
        lowering = Lowering(model=model, changed=False, blockers=blockers)
    entry = {"runtime": lowering.runtime, "lowered": lowering.changed, "passes": lowering.passes,
             "blockers": lowering.blockers, "backends": lowering.backends}  # fmt: skip
    if not lowering.changed:
        return {}, model_json.edge(file=cloud_file, **entry)
    path = Path(folder) / EDGE_FILE
    onnx.save(lowering.model, path)
    report = require(
        compare(reference, onnxruntime_runner(lowering.model), inputs, tolerance),
        against="the source framework (browser file)",
    )
    pinned = tensor_specs(graph_inputs(lowering.model))
    # A pinned browser file takes only these shapes (pin-free-dims); others go to the cloud.
    edge = model_json.edge(file=EDGE_FILE, **entry, inputs=pinned if pinned != tensor_specs(graph_inputs(model)) else None)
    file = file_entry(path, role="edge", opset=default_opset(lowering.model),
                      parity={"source_vs_onnxruntime": report.as_json(), "cloud_model_vs_edge_model": lowering.parity})  # fmt: skip
    return {EDGE_FILE: file}, edge
