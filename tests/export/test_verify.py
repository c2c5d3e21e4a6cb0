"""Parity measurement: the figure, the failure message, the random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from export.errors import ParityError
from export.verify import compare, parity_inputs, require


def test_parity_inputs_keep_shape_dtype_and_start_with_the_sample():
    sample = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array([[1, 5]], dtype=np.int64)}
    inputs = parity_inputs(sample, count=32, seed=1)
    assert len(inputs) == 33
    assert inputs[0] is sample
    for feeds in inputs[1:]:
        assert feeds["x"].shape == (2, 3) and feeds["x"].dtype == np.float32
        assert feeds["n"].dtype == np.int64 and feeds["n"].min() >= 1 and feeds["n"].max() <= 5
    assert not np.array_equal(inputs[1]["x"], inputs[2]["x"])


def test_compare_reports_the_worst_output():
    inputs = [{"x": np.ones((1, 2), np.float32)}]
    reference = lambda feeds: {"a": feeds["x"], "b": feeds["x"] * 2}  # noqa: E731
    candidate = lambda feeds: {"a": feeds["x"] + 1e-7, "b": feeds["x"] * 2 + 0.5}  # noqa: E731
    report = compare(reference, candidate, inputs, tolerance=1e-5)
    assert report.worst_output == "b"
    assert report.max_abs_diff == pytest.approx(0.5)
    assert not report.passed
    with pytest.raises(ParityError, match=r"output 'b' differs by 0.5 \(\|diff\| <= 1e-05 \+ 0\*\|reference\|\) over 1 inputs"):
        require(report, against="keras 3")


def test_shape_mismatch_is_infinitely_wrong():
    inputs = [{"x": np.ones((1, 2), np.float32)}]
    report = compare(lambda f: {"y": f["x"]}, lambda f: {"y": f["x"].T}, inputs)
    assert report.max_abs_diff == float("inf")


def test_matching_nans_are_equal():
    inputs = [{"x": np.array([[np.nan, 1.0]], np.float32)}]
    report = compare(lambda f: {"y": f["x"]}, lambda f: {"y": f["x"].copy()}, inputs)
    assert report.passed
