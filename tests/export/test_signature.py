"""Fitting samples to signatures: the errors a user sees must name the input and both shapes."""

from __future__ import annotations

import numpy as np
import pytest

from export.errors import BadInputError
from export.signature import fit_sample, load_sample, synthesize_sample

SPECS = [{"name": "x", "dtype": "float32", "shape": [None, 8]}]


def test_missing_batch_axis_is_added_and_dtype_cast():
    feeds = fit_sample(np.zeros(8, dtype=np.float64), SPECS)
    assert feeds["x"].shape == (1, 8) and feeds["x"].dtype == np.float32


def test_wrong_shape_names_input_and_shapes():
    with pytest.raises(BadInputError, match=r"sample for input 'x' has shape \[1, 7\], the model expects \[\?, 8\]"):
        fit_sample(np.zeros((1, 7)), SPECS)


def test_multi_input_needs_npz():
    specs = SPECS + [{"name": "z", "dtype": "float32", "shape": [None, 2]}]
    with pytest.raises(BadInputError, match="2 inputs"):
        fit_sample(np.zeros((1, 8)), specs)


def test_free_dims_without_sample_are_refused():
    with pytest.raises(BadInputError, match=r"input 'x' has free dimensions \[\?, \?\]: pass --sample"):
        synthesize_sample([{"name": "x", "dtype": "float32", "shape": [None, None]}])
    assert synthesize_sample(SPECS)["x"].shape == (1, 8)


def test_unreadable_sample(tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy")
    with pytest.raises(BadInputError, match="cannot read sample bad.npy"):
        load_sample(bad)
    with pytest.raises(BadInputError, match="sample file not found"):
        load_sample(tmp_path / "absent.npy")
