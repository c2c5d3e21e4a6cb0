"""Repeated, interleaved rounds: what one figure becomes when every point was measured several times.

One run per point on a shared 2-core machine is not a measurement (the same ratio came out 0.87
and 2.24 a week apart). So every cloud point is measured in several rounds, each round running
every peer once in turn (A B A B …, never all A then all B), and each ratio is taken within a
round, between points measured seconds apart. A ratio is then reported as the median of its
rounds with its spread (lowest–highest); one whose spread straddles 1.0 is "no difference".
numpy's median is all the statistics needed: with 3–5 rounds, anything fancier would claim more
than the data holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import numpy as np

NO_DIFFERENCE = "no difference"


@dataclass(frozen=True)
class Spread:
    """The median of one figure over its rounds, with the lowest and highest round."""

    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, values: Iterable[float]) -> "Spread | None":
        finite = [float(v) for v in values if v is not None and np.isfinite(v)]
        if not finite:
            return None
        return cls(float(np.median(finite)), min(finite), max(finite), len(finite))

    @property
    def straddles_one(self) -> bool:
        return self.low <= 1.0 <= self.high

    def ratio_text(self, digits: int = 2) -> str:
        """`1.23 (1.10–1.31)`, or `no difference (0.95–1.12)` when the spread holds 1.0."""
        span = f"{self.low:.{digits}f}–{self.high:.{digits}f}"
        if self.rounds > 1 and self.straddles_one:
            return f"{NO_DIFFERENCE} (median {self.median:.{digits}f}, {span})"
        return f"{self.median:.{digits}f} ({span})" if self.rounds > 1 else f"{self.median:.{digits}f}"

    def value_text(self, digits: int = 2) -> str:
        """A plain figure (not a ratio): median and spread, no verdict."""
        if self.rounds <= 1:
            return f"{self.median:,.{digits}f}"
        return f"{self.median:,.{digits}f} ({self.low:,.{digits}f}–{self.high:,.{digits}f})"

    def as_json(self) -> dict[str, float | int]:
        return {"median": self.median, "low": self.low, "high": self.high, "rounds": self.rounds}


def load_average() -> float:
    """The 1-minute load average now (0 where the OS has none): what else ran while a round did."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def rotated(items: list, by: int) -> list:
    """`items` started at position `by`: round r runs the peers in a rotated order, so no peer always goes
    first (after an idle pause) or last (after the heaviest load)."""
    if not items:
        return items
    shift = by % len(items)
    return items[shift:] + items[:shift]
