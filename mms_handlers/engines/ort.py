"""onnxruntime on the CPU, sized for one MMS worker among several."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import onnxruntime

from .base import EngineLoadError

THREADS_ENV = "EDGECLOUD_ORT_THREADS"


def intra_op_threads() -> int:
    """Threads per worker: what `edgecloud serve` computed for its worker count, else 1.

    Several workers each spinning all cores would fight; serving favours many small runs.
    """
    try:
        return max(1, int(os.environ.get(THREADS_ENV, "1")))
    except ValueError:
        return 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Split the machine's cores between the workers (at least one thread each)."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def session_options() -> onnxruntime.SessionOptions:
    """All graph optimisations (done once at load), a small sequential pool that does not spin idle."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = intra_op_threads()
    options.inter_op_num_threads = 1
    # Idle workers must not burn the cores other workers need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class OnnxRuntimeEngine:
    name = "onnxruntime"

    def __init__(self, model_path: Path) -> None:
        try:
            self.session = onnxruntime.InferenceSession(str(model_path), session_options(), providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - onnxruntime raises several private types
            raise EngineLoadError(f"onnxruntime cannot load {Path(model_path).name}: {error}") from None
        self.output_names = [output.name for output in self.session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, dict(feeds))))
