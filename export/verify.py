"""Parity: does the ONNX graph under onnxruntime reproduce the source framework?

Every converter hands over a *reference runner* (the source framework's own forward pass);
this module feeds both the same sample plus random inputs shaped like it and judges every output
with the project's one criterion (export/parity.py), keeping the worst figure per output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort

from .errors import ParityError
from .parity import DEFAULT, Criterion, Figure, as_criterion

Feeds = dict[str, np.ndarray]
Runner = Callable[[Feeds], dict[str, np.ndarray]]

DEFAULT_TOLERANCE = DEFAULT
DEFAULT_RANDOM_INPUTS = 32


@dataclass
class ParityReport:
    """The worst figure per output over all inputs compared, judged by `tolerance` (a Criterion).

    Outputs in `exact` (integer, bool and string tensors such as class labels) must match
    exactly: a label that is off by one is wrong, not close.
    """

    figures: dict[str, Figure]
    inputs_compared: int
    tolerance: Criterion = DEFAULT
    worst_output: str = field(init=False)

    def __post_init__(self) -> None:
        failing = [name for name, figure in self.figures.items() if not figure.passed]
        candidates = failing or list(self.figures)
        self.worst_output = max(candidates, key=lambda name: self.figures[name].ratio) if candidates else ""

    @property
    def per_output(self) -> dict[str, float]:
        return {name: figure.max_abs_diff for name, figure in self.figures.items()}

    @property
    def exact(self) -> list[str]:
        return sorted(name for name, figure in self.figures.items() if figure.exact)

    @property
    def max_abs_diff(self) -> float:
        return max(self.per_output.values(), default=0.0)

    @property
    def ratio(self) -> float:
        """The worst error as a fraction of what the criterion allows (≤ 1 passes)."""
        return max((figure.ratio for figure in self.figures.values()), default=0.0)

    @property
    def passed(self) -> bool:
        return all(figure.passed for figure in self.figures.values())

    def as_json(self) -> dict:
        return {
            "max_abs_diff": self.max_abs_diff,
            "per_output": self.per_output,
            "ratio": _json_number(self.ratio),
            "inputs_compared": self.inputs_compared,
            "criterion": self.tolerance.as_json(),
            "exact_outputs": self.exact,
            "passed": self.passed,
        }


def _json_number(value: float) -> float | str:
    return "inf" if value == float("inf") else value


def parity_inputs(sample: Feeds, count: int = DEFAULT_RANDOM_INPUTS, seed: int = 0, keep_integers: bool = False) -> list[Feeds]:
    """The sample itself, then `count` random inputs with its shapes and value range.

    Integer inputs are drawn between the sample's min and max unless `keep_integers`; empty,
    string and other non-numeric inputs always keep the sample's values."""
    rng = np.random.default_rng(seed)
    batches = [sample]
    for _ in range(count):
        feeds = {}
        for name, array in sample.items():
            if array.size == 0:
                values = array
            elif np.issubdtype(array.dtype, np.floating):
                scale = float(np.std(array)) or 1.0
                values = rng.normal(float(np.mean(array)), scale, size=array.shape)
            elif np.issubdtype(array.dtype, np.integer) and not keep_integers:
                low, high = int(array.min()), int(array.max())
                values = rng.integers(low, high + 1, size=array.shape)
            elif array.dtype == np.bool_ and not keep_integers:
                values = rng.integers(0, 2, size=array.shape).astype(bool)
            else:
                values = array
            feeds[name] = np.asarray(values, dtype=array.dtype)
        batches.append(feeds)
    return batches


def accepted_inputs(reference: Runner, sample: Feeds, count: int = DEFAULT_RANDOM_INPUTS) -> tuple[list[Feeds], str]:
    """Parity inputs the reference accepts, and which kind they are (model.json records it).

    Random integers can break a model's own contract (they may be shapes, indices, sizes or a
    count): when the reference refuses a random set, integer and bool inputs keep the sample's
    values; when it still refuses (a float that is a scale), the sample alone is compared. Pass a
    `remembered` reference so the comparison reuses these runs."""
    for keep, kind in ((False, "random"), (True, "random floats; integer and bool inputs as in the sample")):
        inputs = parity_inputs(sample, count, keep_integers=keep)
        try:
            for feeds in inputs[1:]:
                reference(feeds)
        except Exception:  # noqa: BLE001 - any refusal of a drawn input: draw more conservatively
            continue
        return inputs, kind
    return [sample], "the sample alone (random inputs break the model's contract)"


def onnxruntime_runner(model: onnx.ModelProto | bytes | str) -> Runner:
    """Run an ONNX model in-process on the CPU; outputs keyed by graph output name."""
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    options = ort.SessionOptions()
    options.log_severity_level = 4  # onnxruntime logs a failing run at ERROR beside our one line
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]

    def run(feeds: Feeds) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, feeds)))

    return run


def remembered(runner: Runner) -> Runner:
    """The same runner, run once per feeds object: the export compares the source framework with
    the cloud file and again with the browser file on the very same inputs."""
    results: dict[int, tuple[Feeds, dict[str, np.ndarray]]] = {}

    def run(feeds: Feeds) -> dict[str, np.ndarray]:
        if id(feeds) not in results:
            results[id(feeds)] = (feeds, runner(feeds))  # keeps feeds alive so its id stays unique
        return results[id(feeds)][1]

    return run


def compare(reference: Runner, candidate: Runner, inputs: list[Feeds], tolerance: Criterion | float = DEFAULT) -> ParityReport:
    """Judge every output of `candidate` against `reference` on every input; keep the worst figure.

    A bare number as `tolerance` is an absolute bound (rtol 0)."""
    criterion = as_criterion(tolerance)
    worst: dict[str, Figure] = {}
    for feeds in inputs:
        expected = reference(feeds)
        actual = candidate(feeds)
        for name, want in expected.items():
            if name not in actual:
                raise ParityError(f"output {name!r} is missing from the ONNX model's outputs {sorted(actual)}")
            figure = criterion.judge(want, actual[name])
            worst[name] = worst[name].worse(figure) if name in worst else figure
    return ParityReport(figures=worst, inputs_compared=len(inputs), tolerance=criterion)


def require(report: ParityReport, against: str) -> ParityReport:
    """Raise a one-line ParityError naming the worst output and its figure."""
    if not report.passed:
        name = report.worst_output
        limit = "must match exactly" if name in report.exact else report.tolerance.describe()
        raise ParityError(
            f"parity failed against {against}: output {name!r} differs by "
            f"{report.per_output[name]:.3g} ({limit}) over {report.inputs_compared} inputs"
        )
    return report
