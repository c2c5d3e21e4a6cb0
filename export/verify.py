"""Parity: does the ONNX graph under onnxruntime reproduce the source framework?

Every converter hands over a *reference runner* (the source framework's own forward pass);
this module feeds both the same sample plus random inputs shaped like it and reports the
worst absolute difference per output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort

from .errors import ParityError

Feeds = dict[str, np.ndarray]
Runner = Callable[[Feeds], dict[str, np.ndarray]]

DEFAULT_TOLERANCE = 1e-5
DEFAULT_RANDOM_INPUTS = 32


@dataclass
class ParityReport:
    """Worst |difference| per output over all inputs compared.

    Outputs in `exact` (integer, bool and string tensors such as class labels) must match
    exactly: a label that is off by one is wrong, not close.
    """

    per_output: dict[str, float]
    inputs_compared: int
    tolerance: float
    exact: list[str] = field(default_factory=list)
    worst_output: str = field(init=False)

    def __post_init__(self) -> None:
        failing = [name for name in self.per_output if not self._output_passed(name)]
        candidates = failing or list(self.per_output)
        self.worst_output = max(candidates, key=self.per_output.get) if candidates else ""

    def _output_passed(self, name: str) -> bool:
        limit = 0.0 if name in self.exact else self.tolerance
        return self.per_output[name] <= limit

    @property
    def max_abs_diff(self) -> float:
        return max(self.per_output.values(), default=0.0)

    @property
    def passed(self) -> bool:
        return all(self._output_passed(name) for name in self.per_output)

    def as_json(self) -> dict:
        return {
            "max_abs_diff": self.max_abs_diff,
            "per_output": self.per_output,
            "inputs_compared": self.inputs_compared,
            "tolerance": self.tolerance,
            "exact_outputs": self.exact,
            "passed": self.passed,
        }


def parity_inputs(sample: Feeds, count: int = DEFAULT_RANDOM_INPUTS, seed: int = 0) -> list[Feeds]:
    """The sample itself, then `count` random inputs with its shapes and value range."""
    rng = np.random.default_rng(seed)
    batches = [sample]
    for _ in range(count):
        feeds = {}
        for name, array in sample.items():
            if np.issubdtype(array.dtype, np.floating):
                scale = float(np.std(array)) or 1.0
                values = rng.normal(float(np.mean(array)), scale, size=array.shape)
            elif np.issubdtype(array.dtype, np.integer):
                low, high = int(array.min()), int(array.max())
                values = rng.integers(low, high + 1, size=array.shape)
            elif array.dtype == np.bool_:
                values = rng.integers(0, 2, size=array.shape).astype(bool)
            else:
                values = array
            feeds[name] = np.asarray(values, dtype=array.dtype)
        batches.append(feeds)
    return batches


def onnxruntime_runner(model: onnx.ModelProto | bytes | str) -> Runner:
    """Run an ONNX model in-process on the CPU; outputs keyed by graph output name."""
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]

    def run(feeds: Feeds) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, feeds)))

    return run


def _as_comparable(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    numeric = np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    return array.astype(np.float64) if numeric else array.astype(object)


def remembered(runner: Runner) -> Runner:
    """The same runner, run once per feeds object: the export compares the source framework with
    the cloud file and again with the browser file on the very same inputs."""
    results: dict[int, tuple[Feeds, dict[str, np.ndarray]]] = {}

    def run(feeds: Feeds) -> dict[str, np.ndarray]:
        if id(feeds) not in results:
            results[id(feeds)] = (feeds, runner(feeds))  # keeps feeds alive so its id stays unique
        return results[id(feeds)][1]

    return run


def compare(reference: Runner, candidate: Runner, inputs: list[Feeds], tolerance: float = DEFAULT_TOLERANCE) -> ParityReport:
    """Worst |reference - candidate| per output; shape mismatches count as infinite."""
    worst: dict[str, float] = {}
    exact: set[str] = set()
    for feeds in inputs:
        expected = reference(feeds)
        actual = candidate(feeds)
        for name, want in expected.items():
            if name not in actual:
                raise ParityError(f"output {name!r} is missing from the ONNX model's outputs {sorted(actual)}")
            if not np.issubdtype(np.asarray(want).dtype, np.floating):
                exact.add(name)
            want_a, got_a = _as_comparable(want), _as_comparable(actual[name])
            if want_a.shape != got_a.shape:
                diff = float("inf")
            elif want_a.dtype == object:
                diff = 0.0 if np.array_equal(want_a, got_a) else float("inf")
            else:
                diff = float(np.max(np.abs(want_a - got_a))) if want_a.size else 0.0
                if np.isnan(diff):
                    diff = 0.0 if np.array_equal(np.isnan(want_a), np.isnan(got_a)) else float("inf")
            worst[name] = max(worst.get(name, 0.0), diff)
    return ParityReport(per_output=worst, inputs_compared=len(inputs), tolerance=tolerance, exact=sorted(exact))


def require(report: ParityReport, against: str) -> ParityReport:
    """Raise a one-line ParityError naming the worst output and its figure."""
    if not report.passed:
        name = report.worst_output
        limit = "must match exactly" if name in report.exact else f"tolerance {report.tolerance:g}"
        raise ParityError(
            f"parity failed against {against}: output {name!r} differs by "
            f"{report.per_output[name]:.3g} ({limit}) over {report.inputs_compared} inputs"
        )
    return report
