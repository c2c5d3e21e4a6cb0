"""The aggregation rules, numpy only: how a round's deltas become the next parameters.

`aggregate` is FedAvg (McMahan et al. 2017), `base + Σ nᵢ·Δᵢ / Σ nᵢ`, computed in float64 and
cast once to the parameters' dtype, so on values float32 holds exactly the result is exact.
The robust rules (coordinate-wise trimmed mean, median: Yin et al. 2018) ignore the sample
counts on purpose: a weight is what a client claims, and weighting by it would let one client
that claims many examples move the result alone. Clipping bounds each update's L2 norm over
all its tensors together; Gaussian noise (central DP, McMahan et al. 2018) is added to the
aggregate with σ = z · clip · max nᵢ / Σ nᵢ, the most one clipped client can move the weighted
mean. Flower's `aggregate.py` does the weighted mean alone; the rest is a few lines each here.

A contribution's `weight` (buffered rounds: 1 when fresh, less when computed on an older version,
see service.py) scales its delta before any rule combines it; FedAvg then still divides by Σ nᵢ,
not Σ wᵢnᵢ, so stale updates move the model less rather than only relative to each other
(FedBuff's Σ w(sᵢ)Δᵢ / K, with sample counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

Tensors = Mapping[str, np.ndarray]
METHODS = ("fedavg", "trimmed-mean", "median")


@dataclass(frozen=True)
class Contribution:
    """One client's delta against its base, the number of examples it was trained on, and how much it counts."""

    delta: Tensors
    samples: int
    weight: float = 1.0  # staleness weight in (0, 1]: the delta is scaled by it before combining


def l2_norm(delta: Tensors) -> float:
    """The L2 norm of all tensors of one update taken together."""
    return float(np.sqrt(sum(float(np.sum(np.square(np.asarray(v, dtype=np.float64)))) for v in delta.values())))


def clip(delta: Tensors, bound: float | None) -> tuple[dict[str, np.ndarray], float, bool]:
    """(the delta scaled down to norm `bound` if above it, its norm before, whether it was scaled)."""
    norm = l2_norm(delta)
    if bound is None or norm <= bound:
        return {name: np.asarray(value) for name, value in delta.items()}, norm, False
    factor = bound / norm
    return {name: np.asarray(value, dtype=np.float64) * factor for name, value in delta.items()}, norm, True


def _stack(contributions: Sequence[Contribution], name: str) -> np.ndarray:
    return np.stack([np.asarray(c.delta[name], dtype=np.float64) * c.weight for c in contributions])


def combine(contributions: Sequence[Contribution], method: str = "fedavg", trim: float = 0.1) -> dict[str, np.ndarray]:
    """The aggregate delta per tensor name (float64). `trim` is the fraction cut at each end (trimmed-mean)."""
    if not contributions:
        raise ValueError("no contributions to aggregate")
    if method not in METHODS:
        raise ValueError(f"unknown aggregation {method!r}; choose one of {', '.join(METHODS)}")
    names = list(contributions[0].delta)
    result: dict[str, np.ndarray] = {}
    if method == "fedavg":
        weights = np.asarray([c.samples for c in contributions], dtype=np.float64)
        if np.any(weights <= 0):
            raise ValueError("every contribution needs a positive sample count")
        for name in names:
            stacked = _stack(contributions, name)
            result[name] = np.tensordot(weights, stacked, axes=1) / weights.sum()
    elif method == "median":
        for name in names:
            result[name] = np.median(_stack(contributions, name), axis=0)
    else:
        if not 0.0 <= trim < 0.5:
            raise ValueError(f"trim must be in [0, 0.5), got {trim}")
        cut = int(np.floor(trim * len(contributions)))
        for name in names:
            ordered = np.sort(_stack(contributions, name), axis=0)
            result[name] = ordered[cut : len(contributions) - cut].mean(axis=0)
    return result


def noise_scale(contributions: Sequence[Contribution], bound: float, multiplier: float) -> float:
    """σ of the Gaussian noise for central DP on the weighted mean (see the module docstring)."""
    samples = [c.samples for c in contributions]
    return multiplier * bound * max(samples) / sum(samples)


def aggregate(
    base: Tensors,
    contributions: Sequence[Contribution],
    *,
    method: str = "fedavg",
    trim: float = 0.1,
    dp_noise: float = 0.0,
    clip_bound: float | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """New parameters: base + combined delta (+ noise when `dp_noise` > 0), in each base tensor's dtype.

    Contributions are expected clipped already (the service clips on arrival and records it);
    `clip_bound` here only sets the noise scale.
    """
    missing = [name for c in contributions for name in base if name not in c.delta]
    if missing:
        raise ValueError(f"a contribution lacks tensor {missing[0]!r}")
    delta = combine(contributions, method, trim)
    if dp_noise > 0:
        if clip_bound is None:
            raise ValueError("Gaussian noise needs a clipping bound (its scale is relative to it)")
        sigma = noise_scale(contributions, clip_bound, dp_noise)
        rng = rng or np.random.default_rng()
        delta = {name: value + rng.normal(0.0, sigma, size=value.shape) for name, value in delta.items()}
    out = {}
    for name, value in base.items():
        base_value = np.asarray(value)
        out[name] = (base_value.astype(np.float64) + delta[name]).astype(base_value.dtype)
    return out
