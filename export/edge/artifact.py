"""What the registry keeps for the browser: the lowered file (when it differs) and model.json's `edge`.

The default is one file for both sides. When lowering changed the graph, the cloud keeps the
exporter's `model.onnx` (onnxruntime runs it natively and faster) and the browser gets
`model.edge.onnx`, with its own hash and parity figures.

The lowering is an optimisation for one runtime: when the lowered file fails its proof against
the source (or the lowering itself breaks), no browser file is written, the failure is recorded
in every backend's `edge.blockers` with its figure, and the page runs onnxruntime-web on the
cloud file. It never costs the export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from registry import model_json

from ..errors import ParityError, one_line
from ..first_difference import first_differing_operator
from ..manifest import default_opset, file_entry, graph_inputs, tensor_specs
from ..parity import Criterion, as_criterion
from ..verify import DEFAULT_TOLERANCE, Feeds, Runner, compare, onnxruntime_runner, require
from .lowering import Lowering, lower
from .rules import BACKENDS, blocker_summary

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
    tolerance: Criterion | float = DEFAULT_TOLERANCE,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Lower `model`, write `EDGE_FILE` into `folder` if it differs; return (extra files, `edge` entry).

    `reference` runs the source framework and `inputs` are the export's parity inputs, so the
    browser file is held to the same proof as the cloud file. A model ONNX.js already runs as
    exported is left alone: one file serves both sides.
    """
    blockers = blocker_summary(model)
    try:
        lowering = lower(model, sample, tolerance) if enabled and any(blockers.values()) else None
    except Exception as error:  # noqa: BLE001 - a broken lowering costs the browser file, never the export
        return {}, unlowered(cloud_file, blockers, f"the lowering failed: {one_line(error)[:300]}")
    if lowering is None:
        lowering = Lowering(model=model, changed=False, blockers=blockers)
    entry = {
        "runtime": lowering.runtime,
        "lowered": lowering.changed,
        "passes": lowering.passes,
        "blockers": lowering.blockers,
        "backends": lowering.backends,
    }
    if not lowering.changed:
        return {}, model_json.edge(file=cloud_file, **entry)
    try:
        report = require(
            compare(reference, onnxruntime_runner(lowering.model), inputs, tolerance),
            against="the source framework (browser file)",
        )
    except ParityError as error:
        culprit = first_differing_operator(model, lowering.model, inputs, as_criterion(tolerance))
        why = f"the lowered file failed its proof: {error}" + (f"; first operator that differs: {culprit}" if culprit else "")
        return {}, unlowered(cloud_file, blockers, why, lowering.passes)
    path = Path(folder) / EDGE_FILE
    onnx.save(lowering.model, path)
    pinned = tensor_specs(graph_inputs(lowering.model))
    # A pinned browser file takes only these shapes (pin-free-dims); others go to the cloud.
    edge = model_json.edge(file=EDGE_FILE, **entry, inputs=pinned if pinned != tensor_specs(graph_inputs(model)) else None)
    file = file_entry(
        path,
        role="edge",
        opset=default_opset(lowering.model),
        parity={"source_vs_onnxruntime": report.as_json(), "cloud_model_vs_edge_model": lowering.parity},
    )
    return {EDGE_FILE: file}, edge


def unlowered(cloud_file: str, blockers: dict[str, list[str]], why: str, passes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The `edge` entry when no lowered file can be kept: onnxruntime-web on the cloud file, and
    `why` among every ONNX.js backend's blockers."""
    return model_json.edge(
        file=cloud_file,
        runtime="onnxruntime-web",
        lowered=False,
        passes=passes or [],
        blockers={backend: sorted({*blockers.get(backend, []), why}) for backend in BACKENDS},
        backends=[],
    )


def browser_plan(edge: dict[str, Any]) -> str:
    """One line: what the browser will run (before `verify` measures and ranks the runtimes)."""
    if edge["runtime"] == "onnxjs":
        return f"the browser runs {edge['file']} on ONNX.js ({', '.join(edge['backends'])})"
    found = {reason for reasons in edge["blockers"].values() for reason in reasons}
    reasons = sorted(found, key=lambda reason: (not reason.startswith("the lower"), reason))  # a failed proof first
    first = reasons[0] if reasons else "not lowered (--no-edge)"
    more = f" and {len(reasons) - 1} more in model.json edge.blockers" if len(reasons) > 1 else ""
    return f"the browser runs {edge['file']} on onnxruntime-web: ONNX.js cannot ({first[:200]}{more})"
