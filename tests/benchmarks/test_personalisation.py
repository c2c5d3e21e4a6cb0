"""How a person's recording is cut for personalisation. The benchmark itself runs in smoke mode in
tests/benchmarks/test_bench_smoke.py, on the demo model that run already built and exported."""

from __future__ import annotations

import numpy as np
import pytest

from edgecloud.builder.data import DataSpec, personal_parts


def test_personal_parts_never_straddle_the_cut():
    spec = DataSpec(stride=5)
    signal = np.arange(1000, dtype=np.float32)
    parts = personal_parts(signal, spec, first_seconds=4.0)
    assert parts.y_first.max() < 400 <= parts.x_later.min()
    assert parts.x_first.shape[1:] == (spec.window, 1) and parts.y_later.shape[1:] == (spec.horizon,)
    with pytest.raises(ValueError, match="shorter than one window"):
        personal_parts(signal, spec, first_seconds=9.0)
