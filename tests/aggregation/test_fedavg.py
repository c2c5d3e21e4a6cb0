"""The aggregation rules on integer-valued arrays, where float32 is exact."""

from __future__ import annotations

import numpy as np
import pytest

from aggregation.fedavg import Contribution, aggregate, clip, combine, l2_norm, noise_scale

BASE = {"w": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), "b": np.array([10.0], np.float32)}


def contributions() -> list[Contribution]:
    return [
        Contribution({"w": np.array([[2.0, 0.0], [0.0, 4.0]]), "b": np.array([4.0])}, samples=1),
        Contribution({"w": np.array([[6.0, 4.0], [8.0, 0.0]]), "b": np.array([0.0])}, samples=3),
    ]


def test_fedavg_is_base_plus_weighted_mean_of_deltas_exactly() -> None:
    new = aggregate(BASE, contributions())
    # (1·Δ1 + 3·Δ2) / 4
    assert np.array_equal(new["w"], np.array([[1 + 5.0, 2 + 3.0], [3 + 6.0, 4 + 1.0]], np.float32))
    assert np.array_equal(new["b"], np.array([11.0], np.float32))
    assert new["w"].dtype == np.float32


def test_median_and_trimmed_mean_ignore_one_outlier() -> None:
    deltas = [Contribution({"x": np.array([v])}, samples=s) for v, s in ((1.0, 1), (2.0, 1), (3.0, 1), (1000.0, 100))]
    assert combine(deltas, "median")["x"][0] == 2.5
    assert combine(deltas, "trimmed-mean", trim=0.25)["x"][0] == 2.5  # one cut at each end: mean of 2 and 3
    assert combine(deltas, "fedavg")["x"][0] == pytest.approx((1 + 2 + 3 + 100_000) / 103)


def test_clip_scales_to_the_bound_over_all_tensors() -> None:
    delta = {"a": np.array([3.0]), "b": np.array([4.0])}
    assert l2_norm(delta) == 5.0
    clipped, norm, scaled = clip(delta, 2.5)
    assert (norm, scaled) == (5.0, True)
    assert l2_norm(clipped) == pytest.approx(2.5) and clipped["a"][0] == pytest.approx(1.5)
    same, _, scaled = clip(delta, 10.0)
    assert not scaled and np.array_equal(same["a"], delta["a"])


def test_noise_is_off_by_default_and_scaled_to_the_clip_when_on() -> None:
    assert np.array_equal(aggregate(BASE, contributions())["w"], aggregate(BASE, contributions())["w"])
    noisy = aggregate(BASE, contributions(), dp_noise=1.0, clip_bound=2.0, rng=np.random.default_rng(0))
    assert not np.array_equal(noisy["w"], aggregate(BASE, contributions())["w"])
    assert noise_scale(contributions(), 2.0, 1.0) == 2.0 * 3 / 4
    with pytest.raises(ValueError, match="clipping bound"):
        aggregate(BASE, contributions(), dp_noise=1.0)


def test_bad_contributions_are_refused() -> None:
    with pytest.raises(ValueError, match="no contributions"):
        combine([])
    with pytest.raises(ValueError, match="lacks tensor 'b'"):
        aggregate(BASE, [Contribution({"w": np.zeros((2, 2))}, 1)])
    with pytest.raises(ValueError, match="positive sample"):
        combine([Contribution({"x": np.zeros(1)}, 0)])
