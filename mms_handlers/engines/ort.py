"""onnxruntime on the CPU, sized for one MMS worker among several."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import onnxruntime

THREADS_ENV = "EDGECLOUD_ORT_THREADS"


def intra_op_threads() -> int:
    """Threads per worker: what `edgecloud serve` computed for its worker count, else 1.

    Several workers each spinning all cores would fight; serving favours many small runs.
    """
    try:
        return max(1, int(os.environ.get(THREADS_ENV, "1")))
    except ValueError:
        return 1


class OnnxRuntimeEngine:
    name = "onnxruntime"

    def __init__(self, model_path: Path) -> None:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = intra_op_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.output_names = [output.name for output in self.session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, dict(feeds))))
