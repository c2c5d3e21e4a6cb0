"""ONNX's own operator test models (the node tests `onnx.backend.test` generates in-process, about
1,900 small valid models written by nobody here) through the `.onnx` import, each with its own test
inputs as the sample: every file must either export with its own expected outputs reproduced, or be
refused in one line. Anything else is a bug of ours (a traceback).

    python -m benchmarks.onnx_node_corpus [--only SUBSTRING] [--edge] [--workers 2] [--out FILE.md]

Prints (and writes) a table: exported (own outputs reproduced) / exported but onnxruntime differs
from onnx's expected outputs / refused in one line (grouped by reason) / traceback.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

EXPORTED, DIFFERS, REFUSED, TRACEBACK = "exported", "exported, onnxruntime differs from onnx's expected outputs", "refused", "traceback"


@dataclass
class Case:
    name: str
    model: bytes
    inputs: list[Any]
    outputs: list[Any]


def node_cases(only: str | None = None) -> list[Case]:
    """The generated node tests (first data set each), optionally those whose name contains `only`."""
    import warnings

    from onnx.backend.test.case import node

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = node.collect_testcases(None)
    return [
        Case(c.name, c.model.SerializeToString(), list(c.data_sets[0][0]), list(c.data_sets[0][1]))
        for c in cases
        if c.data_sets and (only is None or only in c.name)
    ]


def as_array(value: Any) -> Any:
    """A test value as numpy (TensorProto → array); sequences, maps and None stay as they are."""
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, (list, dict)) or value is None:
        return value
    return np.asarray(value)


def _savable(value: Any) -> np.ndarray:
    """As a user would save it: strings as numpy's own string type (object arrays need pickle)."""
    array = np.asarray(value)
    return np.asarray(array.tolist(), dtype=str) if array.dtype == object else array


def sample_of(model: onnx.ModelProto, inputs: list[Any]) -> dict[str, Any]:
    initializers = {init.name for init in model.graph.initializer}
    names = [value.name for value in model.graph.input if value.name not in initializers]
    return {name: as_array(value) for name, value in zip(names, inputs)}


def run_case(case: Case, edge: bool = False) -> tuple[str, str, str]:
    """(case name, outcome, detail) for one node test through export_model."""
    from export.errors import ExportError
    from export.parity import DEFAULT
    from export.pipeline import export_model
    from export.verify import onnxruntime_runner

    model = onnx.ModelProto.FromString(case.model)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "model.onnx"
        source.write_bytes(case.model)
        sample = sample_of(model, case.inputs)
        sample_path = Path(folder) / "sample.npz"
        try:
            np.savez(sample_path, **{name: _savable(value) for name, value in sample.items()})
        except Exception:  # noqa: BLE001 - a sequence or map input is not an array: the import gets none
            sample_path = None
        try:
            result = export_model(source, name="node", version="1", out=Path(folder) / "registry", sample=sample_path, edge=edge)
        except ExportError as error:
            text = str(error)
            return case.name, REFUSED if "\n" not in text else TRACEBACK, text
        except Exception:  # noqa: BLE001 - what this benchmark hunts
            return case.name, TRACEBACK, traceback.format_exc(limit=-3).strip().splitlines()[-1]
        run = onnxruntime_runner(str(result.version_dir / "model.onnx"))
        got = run({name: value for name, value in sample.items() if name in {v.name for v in model.graph.input}})
        for value, want in zip(model.graph.output, case.outputs):
            figure = DEFAULT.judge(as_array(want), got[value.name]) if isinstance(as_array(want), np.ndarray) else None
            if figure is not None and not figure.passed:
                return case.name, DIFFERS, f"output {value.name!r} {figure.max_abs_diff:.3g} away"
        return case.name, EXPORTED, ""


def _run(args: tuple[Case, bool]) -> tuple[str, str, str]:
    import warnings

    warnings.simplefilter("ignore")
    with np.errstate(all="ignore"):
        return run_case(*args)


def summary(results: list[tuple[str, str, str]]) -> str:
    counts = collections.Counter(outcome for _, outcome, _ in results)
    lines = ["| outcome | models |", "|---|---:|"]
    lines += [f"| {outcome} | {counts.get(outcome, 0)} |" for outcome in (EXPORTED, DIFFERS, REFUSED, TRACEBACK)]
    lines.append(f"| **total** | {len(results)} |")
    reasons = collections.Counter(_reason(detail) for _, outcome, detail in results if outcome == REFUSED)
    lines += ["", "| refusal (first words) | models |", "|---|---:|"]
    lines += [f"| {reason} | {count} |" for reason, count in reasons.most_common(25)]
    bad = [(name, detail) for name, outcome, detail in results if outcome in (TRACEBACK, DIFFERS)]
    if bad:
        lines += ["", "| model | traceback or difference |", "|---|---|"]
        lines += [f"| {name} | {detail[:160].replace('|', '/')} |" for name, detail in sorted(bad)]
    return "\n".join(lines)


def _reason(detail: str) -> str:
    words = detail.replace("model.onnx", "").split(":")
    return ":".join(words[:2]).strip()[:90]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="only the node tests whose name contains this")
    parser.add_argument("--edge", action="store_true", help="also lower for the browser (slow: about 10x)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the table here too (Markdown)")
    args = parser.parse_args(argv)
    cases = node_cases(args.only)
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(args.workers, maxtasksperchild=100) as pool:
        results = list(pool.imap_unordered(_run, [(case, args.edge) for case in cases], chunksize=4))
    table = (
        summary(results)
        + f"\n\n{len(cases)} node tests in {time.monotonic() - started:.0f} s, edge lowering {'on' if args.edge else 'off'}"
    )
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 1 if any(outcome == TRACEBACK for _, outcome, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
