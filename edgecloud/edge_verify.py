"""`edgecloud verify`: the browser file, run in Chromium on every browser runtime, against
onnxruntime in Python on the same inputs; the table is recorded in model.json `edge.verified`, and
the (runtime, backend) pairs that passed, fastest first, in `edge.ranking` (the page's default order).

When the browser file is a lowered variant, onnxruntime-web also runs the cloud file as it is: it
needs none of the lowering (it has LSTM, every opset), and the lowering can cost it dearly (the demo
forecaster's unrolled LSTM: 54 ms against 0.4 ms). That row carries `"file"`; rows without one are
about the edge file. The page may then run onnxruntime-web on the cloud file, since it was proven here.

A runtime that loads the model but fails the parity criterion (export/parity.py) fails the verification:
ONNX.js can return wrong numbers without an error (Softmax-13), so loading is never enough.
Nor is one example at a time: ONNX.js cpu's Conv gets every image of a batch but the first wrong.
So when the browser file's batch is free, the inputs end with one batch of several examples; and
where the static check names that trap, the cpu row is not run and never passes.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from export.edge.rules import CONV_BATCH_ON_CPU
from export.errors import BadInputError
from export.first_difference import exposed, first_difference
from export.manifest import file_entry, read_manifest, write_manifest
from export.parity import DEFAULT, Criterion, Figure, as_criterion
from export.pipeline import load_feeds
from export.verify import accepted_inputs, onnxruntime_runner, remembered

from .browser import TARGETS, HarnessBrowser
from .runtime_files import download_bytes

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

    from .webserver import StaticSite

DEFAULT_TOLERANCE = DEFAULT
DEFAULT_RANDOM_INPUTS = 3


@dataclass
class VerifyReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    tolerance: Criterion = DEFAULT_TOLERANCE
    inputs: int = 0

    @property
    def failures(self) -> list[str]:
        bad = [
            f"{row_name(row)} differs by {row['max_abs_diff']:.3g} ({self.tolerance.describe()})"
            + (f", first at {row['first_difference']}" if row.get("first_difference") else "")
            for row in self.rows
            if row["runs"] and not row["passed"]
        ]
        if not any(row["runs"] for row in self.rows):
            bad.append("no browser runtime runs the model")
        return bad

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_json(self) -> dict[str, Any]:
        return {
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "inputs_compared": self.inputs,
            "criterion": self.tolerance.as_json(),
            "passed": self.passed,
            "results": self.rows,
        }


def row_name(row: dict[str, Any]) -> str:
    """`runtime/backend`, plus ` on FILE` for a row about another file than the edge file."""
    return f"{row['runtime']}/{row['backend']}" + (f" on {row['file']}" if "file" in row else "")


def ranking(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that passed, fastest median first, each with its runtime's first-visit download
    size (and `file` when it ran another file than the edge file, as in the rows).

    The page picks the first by default and weighs `download_bytes` on a slow connection; a
    runtime that failed or did not run is left out, so the page never picks it.
    """
    passed = sorted((row for row in rows if row["passed"]), key=lambda row: row["median_ms"])
    return [
        {
            "runtime": row["runtime"],
            "backend": row["backend"],
            **({"file": row["file"]} if "file" in row else {}),
            "median_ms": row["median_ms"],
            "download_bytes": download_bytes(row["runtime"]),
        }
        for row in passed
    ]


BATCHED_EXAMPLES = 3


def batched_feeds(inputs: list[dict[str, np.ndarray]], edge_file: Path) -> dict[str, np.ndarray] | None:
    """The first examples stacked into one batch, when every input of the browser file has a free
    first dimension (a file pinned to batch 1 never gets more); None otherwise."""
    graph = onnx.load(str(edge_file), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    dims = [value.type.tensor_type.shape.dim for value in graph.input if value.name not in initializers]
    if len(inputs) < 2 or not all(d and not d[0].HasField("dim_value") for d in dims):
        return None
    chosen = inputs[:BATCHED_EXAMPLES]
    return {name: np.concatenate([feeds[name] for feeds in chosen], axis=0) for name in chosen[0]}


def result_row(
    runtime: str,
    backend: str,
    result: dict[str, Any],
    expected: list[dict[str, np.ndarray]],
    tolerance: Criterion | float,
    file: str | None = None,
) -> dict[str, Any]:
    """One row of a verification table from the harness's answer (`file`: another than the one judged)."""
    row: dict[str, Any] = {"runtime": runtime, "backend": backend, "loads": bool(result.get("loads"))}
    if file is not None:
        row["file"] = file
    if "outputs" in result:
        figure = judged(expected, result["outputs"], as_criterion(tolerance))
        row.update(runs=True, max_abs_diff=figure.max_abs_diff, ratio=figure.ratio, median_ms=result["medianMs"], passed=figure.passed)
    else:  # did not load, or loaded and then threw: no numbers, so nothing to mismatch
        row.update(runs=False, max_abs_diff=None, median_ms=None, passed=False, error=result.get("error", "")[:300])
    return row


def recorded(report: VerifyReport, file: str, **extra: Any) -> dict[str, Any]:
    """What model.json keeps of a verification of `file`: `verified` (the table, JSON-safe) and
    `ranking` (the pairs that passed, fastest first), for an `edge` entry (inference or training step)."""
    verified = {**report.as_json(), "file": file, **extra}
    verified["results"] = [
        {key: "inf" if key in ("max_abs_diff", "ratio") and value == math.inf else value for key, value in row.items()}
        for row in report.rows
    ]
    return {"verified": verified, "ranking": ranking(report.rows)}


def judged(want: list[dict[str, np.ndarray]], got: list[dict[str, np.ndarray]], criterion: Criterion) -> Figure:
    """The worst figure over every output of every input; the browser's flat data takes the reference's shape."""
    worst = Figure(0.0, 0.0, False)
    for expected, actual in zip(want, got):
        for name, array in expected.items():
            if name not in actual or np.asarray(actual[name]).size != array.size:
                return Figure(math.inf, math.inf, False)
            worst = worst.worse(criterion.judge(array, np.asarray(actual[name]).reshape(array.shape)))
    return worst


def check_files(version_dir: Path, manifest: dict[str, Any]) -> None:
    """The files model.json names must be there with the SHA-256 it records."""
    for name, entry in manifest["files"].items():
        path = version_dir / name
        if not path.is_file():
            raise BadInputError(f"{path} is missing")
        if file_entry(path)["sha256"] != entry["sha256"]:
            raise BadInputError(f"{path} does not match the SHA-256 in model.json")


def verify_version(
    version_dir: Path,
    *,
    tolerance: Criterion | float = DEFAULT_TOLERANCE,
    random_inputs: int = DEFAULT_RANDOM_INPUTS,
    repeats: int = 10,
    context: BrowserContext | None = None,
    site: StaticSite | None = None,
    record: bool = True,
    targets: list[tuple[str, str]] | None = None,
    cloud_file: bool = True,
) -> VerifyReport:
    """Run the edge file on every (runtime, backend) in Chromium (and onnxruntime-web on the cloud
    file when the edge file differs); optionally record in model.json.

    `targets` narrows the (runtime, backend) pairs (default: all); `cloud_file=False` leaves out the
    onnxruntime-web run of the cloud file (for callers that judge the edge file alone). A row that
    loads and runs must match within `tolerance`; one that cannot load or throws while running is
    reported (ONNX.js's webgl shaders fail on some graphs), not a mismatch. A bare number as `tolerance`
    is an absolute bound (rtol 0).
    """
    version_dir = Path(version_dir)
    if not (version_dir / "model.json").is_file():
        raise BadInputError(f"{version_dir} is not an exported model version (no model.json)")
    manifest = read_manifest(version_dir)
    check_files(version_dir, manifest)
    edge_file = manifest["edge"]["file"]
    reference = remembered(onnxruntime_runner(str(version_dir / manifest["cloud"]["file"])))
    inputs = accepted_inputs(reference, load_feeds(version_dir), random_inputs)[0]
    if (batch := batched_feeds(inputs, version_dir / edge_file)) is not None:
        inputs.append(batch)
    expected = [reference(feeds) for feeds in inputs]
    registry = version_dir.parent.parent
    folder = f"/models/{manifest['name']}/{manifest['version']}"
    names = [spec["name"] for spec in manifest["inputs"]]
    runs = [(runtime, backend, edge_file) for runtime, backend in targets or TARGETS]
    if cloud_file and manifest["cloud"]["file"] != edge_file and ("onnxruntime-web", "wasm", edge_file) in runs:
        runs.append(("onnxruntime-web", "wasm", manifest["cloud"]["file"]))
    report = VerifyReport(tolerance=as_criterion(tolerance), inputs=len(inputs))
    batch_trap = any(CONV_BATCH_ON_CPU in reason for reason in (manifest["edge"].get("blockers") or {}).get("cpu", []))
    with HarnessBrowser(registry, context=context, site=site) as browser:
        for runtime, backend, file in runs:
            if batch_trap and (runtime, backend, file) == ("onnxjs", "cpu", edge_file):
                result = {"loads": False, "error": f"not run: the static check says {CONV_BATCH_ON_CPU}"}
            else:
                result = browser.run(runtime, backend, f"{folder}/{file}", inputs, names, repeats)
            row = result_row(runtime, backend, result, expected, report.tolerance, None if file == edge_file else file)
            if row["runs"] and not row["passed"]:
                culprit = browser_first_difference(browser, (runtime, backend), version_dir, file, inputs, names, report.tolerance)
                row.update({"first_difference": culprit} if culprit else {})
            report.rows.append(row)
    if record:
        manifest["edge"] = {**manifest["edge"], **recorded(report, edge_file)}
        write_manifest(version_dir, manifest)
    return report


def browser_first_difference(
    browser: HarnessBrowser,
    target: tuple[str, str],
    version_dir: Path,
    file: str,
    inputs: list[dict[str, np.ndarray]],
    names: list[str],
    criterion: Criterion,
) -> str | None:
    """The first operator whose output differs between the browser runtime and onnxruntime: a probe copy of
    `file` with every float intermediate exposed as an output runs on both, served from a temporary
    folder of its own on the same browser (the registry's version folder is never written)."""
    model = onnx.load(str(version_dir / file))
    with tempfile.TemporaryDirectory(prefix="edgecloud-probe-") as folder:
        probe = Path(folder) / "probe" / "1" / "model.onnx"
        probe.parent.mkdir(parents=True)
        onnx.save(exposed(model, floats_only=True), probe)
        try:
            with HarnessBrowser(Path(folder), context=browser.context) as prober:
                result = prober.run(*target, "/models/probe/1/model.onnx", inputs, names, 1)
            if "outputs" not in result:
                return None
            reference = onnxruntime_runner(str(probe))
            for feeds, outputs in zip(inputs, result["outputs"]):
                found = first_difference(reference, lambda _feeds, outputs=outputs: outputs, model, feeds, criterion)
                if found:
                    return found
        except Exception:  # noqa: BLE001 - the bisection explains a mismatch; it never adds a failure
            return None
    return None


def format_table(report: VerifyReport) -> str:
    lines = [f"{'runtime':<16} {'backend':<8} {'loads':<6} {'max |diff|':>11} {'median ms':>10}  result"]
    for row in report.rows:
        diff = row.get("max_abs_diff")
        diff_text = "-" if diff is None else f"{diff:.2e}"
        ms = "-" if row.get("median_ms") is None else f"{row['median_ms']:.3f}"
        if row["runs"]:
            verdict = (
                "ok"
                if row["passed"]
                else "MISMATCH" + (f": first differs at {row['first_difference']}" if row.get("first_difference") else "")
            )
        else:
            verdict = f"{'cannot run' if row['loads'] else 'cannot load'}: {row.get('error', '')[:70]}"
        on = f" (on {row['file']})" if "file" in row else ""
        lines.append(
            f"{row['runtime']:<16} {row['backend']:<8} {'yes' if row['loads'] else 'no':<6} {diff_text:>11} {ms:>10}  {verdict}{on}"
        )
    return "\n".join(lines)


def format_ranking(report: VerifyReport) -> str:
    """One line: the order the page tries the runtimes in by default."""
    ranked = ranking(report.rows)
    if not ranked:
        return "ranking: no runtime passed; the page cannot run the model"
    entries = [
        f"{row_name(row)} ({row['median_ms']:.3f} ms"
        + ("" if row["download_bytes"] is None else f", {row['download_bytes'] / 1e6:.1f} MB")
        + ")"
        for row in ranked
    ]
    return "ranking (edge.ranking, the page's default order): " + ", ".join(entries)
