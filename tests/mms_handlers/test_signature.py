"""Inputs checked against model.json: each mistake gets a message naming the input, expected and got."""

from __future__ import annotations

import numpy as np
import pytest

from mms_handlers.errors import RequestError
from mms_handlers.signature import Signature

MANIFEST = {
    "inputs": [{"name": "x", "dtype": "float32", "shape": [None, 4]}, {"name": "n", "dtype": "int64", "shape": [None, 1]}],
    "outputs": [{"name": "y", "dtype": "float32", "shape": [None, 3]}],
}
SIGNATURE = Signature.from_manifest(MANIFEST)
GOOD_N = [[1]]


def check(**values):
    return SIGNATURE.check(values)


def test_good_values_become_arrays_of_the_model_dtypes():
    feeds = check(x=[[1, 2, 3, 4]], n=np.array([[7]], np.int32))
    assert feeds["x"].dtype == np.float32 and feeds["n"].dtype == np.int64


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"x": [[0.0] * 4]}, "missing input 'n': expected inputs ['x', 'n']"),
        ({"x": [[0.0] * 4], "n": GOOD_N, "z": [1]}, "unexpected input 'z'"),
        ({"x": [0.0] * 4, "n": GOOD_N}, "input 'x': expected rank 2 float32[?, 4], got shape [4]"),
        ({"x": [[0.0] * 5], "n": GOOD_N}, "input 'x': expected float32[?, 4], got shape [1, 5]"),
        ({"x": [["a"] * 4], "n": GOOD_N}, "input 'x': expected float32[?, 4], got text"),
        ({"x": [[0.0] * 4], "n": [[1.5]]}, "input 'n': expected int64[?, 1], got float64 values"),
        ({"x": [[0.0] * 4, [0.0]], "n": GOOD_N}, "input 'x': expected float32[?, 4], got a ragged nested list"),
        ({"x": np.zeros((1, 4), np.float64), "n": GOOD_N}, "input 'x': expected float32[?, 4], got dtype float64"),
        ({"x": np.zeros((1, 4), np.float32), "n": np.array([[1.0]])}, "input 'n': expected int64[?, 1], got dtype float64"),
        ({"x": [[0.0, float("nan"), 0.0, 0.0]], "n": GOOD_N}, "input 'x': expected finite values, got NaN or Inf at index [0, 1]"),
        ({"x": [[0.0, 0.0, float("inf"), 0.0]], "n": GOOD_N}, "got NaN or Inf at index [0, 2]"),
    ],
)
def test_mistakes_are_named(values, fragment):
    with pytest.raises(RequestError) as caught:
        SIGNATURE.check(values)
    assert fragment in caught.value.message and caught.value.status == 400


def test_nan_allowed_when_model_json_says_so():
    signature = Signature.from_manifest({**MANIFEST, "serving": {"allow_nan": True}})
    feeds = signature.check({"x": [[np.nan, 0, 0, 0]], "n": GOOD_N})
    assert np.isnan(feeds["x"][0, 0])


def test_batchable_needs_a_free_first_dim_everywhere():
    assert SIGNATURE.batchable
    fixed = Signature.from_manifest(
        {"inputs": [{"name": "x", "dtype": "float32", "shape": [2, 3]}], "outputs": [{"name": "y", "dtype": "float32", "shape": [None, 3]}]}
    )
    assert not fixed.batchable
