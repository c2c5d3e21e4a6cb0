"""The one parity criterion: when does a candidate's output count as the reference's output?

Per output, elementwise, as `numpy.isclose`:  |candidate − reference| ≤ atol + rtol·|reference|,
where an output in a coarser float type than float32 (float16) gets at least its own rounding:
atol ≥ eps and rtol ≥ 2·eps of that type.
Integer, bool and string outputs (labels, indices, masks) must match exactly; NaN must sit where the
reference has NaN. Every comparison in the project goes through `Criterion.judge`: export against
the source framework, each lowering pass, the browser `verify`, the training step, federated versions.

Why not one absolute tolerance: an output in pixels (a detector's boxes, values of a few hundred)
carries float32 rounding of ~1e-4 (3e-7 relative) that an absolute 1e-4 calls a mismatch, while a
probability near 0 needs an absolute bound. Why not the float64-reference rule (error against a
float64 evaluation ≤ c × the reference's own error): it needs a float64 evaluation of every graph,
which onnxruntime lacks for many operators and onnx's ReferenceEvaluator computes too slowly for
a 320×320 detector on this machine, and its verdict depends on which of two float32 summation
orders happens to land nearer (that ordering flips between processors). The figures behind ATOL
and RTOL are in docs/parity.md. numpy.isclose is the rule; this module adds the figure a verdict
is recorded with (the worst error as a fraction of what the rule allows, `ratio`) and the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Measured (docs/parity.md): float32 rounding of the same computation reaches 1.2e-4 at |reference|
# 0.14 (silero-vad's recurrent state, two summation orders of an exact Conv rewrite, 64 inputs) and
# 3e-5 absolute / 5e-7 relative in the browser runtimes; ATOL and RTOL leave that 2x headroom and
# keep the old browser bound (1e-4) as the floor. Injected faults (tests/export/test_parity_criterion.py)
# exceed them at least 6-fold, most by 100-10,000-fold.
ATOL = 1e-4
RTOL = 1e-3


@dataclass(frozen=True)
class Figure:
    """One output's verdict: the worst |difference|, and the worst difference as a fraction of
    what the criterion allows there (≤ 1 passes; inf for a shape, NaN-placement or exact mismatch)."""

    max_abs_diff: float
    ratio: float
    exact: bool

    @property
    def passed(self) -> bool:
        return self.ratio <= 1.0

    def worse(self, other: Figure) -> Figure:
        return Figure(max(self.max_abs_diff, other.max_abs_diff), max(self.ratio, other.ratio), self.exact or other.exact)


@dataclass(frozen=True)
class Criterion:
    """`atol + rtol·|reference|`, elementwise; atol = rtol = 0 asks for bit-identical outputs."""

    atol: float = ATOL
    rtol: float = RTOL

    def judge(self, reference: Any, candidate: Any) -> Figure:
        want, got = np.asarray(reference), np.asarray(candidate)
        exact = not (np.issubdtype(want.dtype, np.floating) or np.issubdtype(want.dtype, np.complexfloating))
        if want.shape != got.shape:
            return Figure(float("inf"), float("inf"), exact)
        if not _numeric(want) or not _numeric(got):
            same = np.array_equal(want.astype(object), got.astype(object))
            return Figure(0.0 if same else float("inf"), 0.0 if same else float("inf"), True)
        want64, got64 = want.astype(np.float64), got.astype(np.float64)
        if want64.size == 0:
            return Figure(0.0, 0.0, exact)
        if not np.array_equal(np.isnan(want64), np.isnan(got64)):
            return Figure(float("inf"), float("inf"), exact)
        finite = ~np.isnan(want64)
        infinite = np.isinf(want64) | np.isinf(got64)
        if np.any(infinite & finite & (want64 != got64)):
            return Figure(float("inf"), float("inf"), exact)
        usable = finite & ~infinite
        diff = np.abs(got64[usable] - want64[usable])
        worst = float(diff.max()) if diff.size else 0.0
        if exact:
            return Figure(worst, 0.0 if worst == 0 else float("inf"), True)
        atol, rtol = self.atol, self.rtol
        coarse = max(_eps(want.dtype), _eps(got.dtype))
        if coarse > _FLOAT32_EPS and (atol > 0 or rtol > 0):  # a float16 output: at least its own rounding
            atol, rtol = max(atol, coarse), max(rtol, 2 * coarse)
        allowed = atol + rtol * np.abs(want64[usable])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(diff == 0, 0.0, diff / allowed)
        return Figure(worst, float(ratios.max()) if ratios.size else 0.0, False)

    def describe(self) -> str:
        return f"|diff| <= {self.atol:g} + {self.rtol:g}*|reference|"

    def as_json(self) -> dict[str, Any]:
        return {"rule": "abs(candidate - reference) <= atol + rtol * abs(reference)", "atol": self.atol, "rtol": self.rtol}


_FLOAT32_EPS = float(np.finfo(np.float32).eps)


def _eps(dtype: np.dtype) -> float:
    return float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else 0.0


def _numeric(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_


DEFAULT = Criterion()


def as_criterion(value: Criterion | float | None) -> Criterion:
    """A Criterion as is; a bare number is an absolute tolerance (rtol 0), as the old single figure was."""
    if value is None:
        return DEFAULT
    if isinstance(value, Criterion):
        return value
    return Criterion(atol=float(value), rtol=0.0)
