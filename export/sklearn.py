"""scikit-learn (a joblib/pickle file of an estimator or pipeline) → ONNX through skl2onnx.

Unpickling runs code from the file: the pipeline refuses such a file unless the caller passes
trust_pickle=True (`--trust-pickle`), and only then calls this converter. Classifiers are converted
without skl2onnx's ZipMap, so their outputs are plain tensors (`label`, `probabilities`) that
onnxruntime, onnxruntime-web and the MMS handler all take.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .conversion import Conversion
from .errors import BadInputError, UnsupportedModelError, one_line
from .quiet import silenced
from .signature import fit_sample, synthesize_sample
from .verify import Feeds

INPUT_NAME = "input"


def load_estimator(source: Path) -> Any:
    """Unpickle with joblib (which also reads plain pickles); anything not an estimator is refused."""
    import joblib

    try:
        with silenced():
            estimator = joblib.load(source)
    except Exception as error:
        raise BadInputError(f"cannot load scikit-learn model {source.name}: {one_line(error)}") from None
    if not hasattr(estimator, "fit"):
        raise BadInputError(f"{source.name} holds a {type(estimator).__name__}, not a scikit-learn estimator")
    return estimator


def _steps(estimator: Any) -> list[Any]:
    """The estimator and, for pipelines, every step inside it (options are set per step)."""
    found = [estimator]
    for step in getattr(estimator, "steps", []):
        found.extend(_steps(step[1]))
    return found


def _methods(estimator: Any, output_count: int) -> list[str]:
    """Which estimator method reproduces each ONNX output, in skl2onnx's output order."""
    if output_count == 2 and hasattr(estimator, "predict_proba"):
        return ["predict", "predict_proba"]
    if hasattr(estimator, "predict"):
        return ["predict"]
    return ["transform"]


def _reference(estimator: Any, model: onnx.ModelProto):
    outputs = [(value.name, len(value.type.tensor_type.shape.dim)) for value in model.graph.output]
    methods = _methods(estimator, len(outputs))

    def run(feeds: Feeds) -> dict[str, np.ndarray]:
        results = {}
        for (name, rank), method in zip(outputs, methods):
            value = np.asarray(getattr(estimator, method)(feeds[INPUT_NAME]))
            if value.ndim == 1 and rank == 2:
                value = value[:, np.newaxis]  # skl2onnx regressors answer [N, 1]
            results[name] = value
        return results

    return run


class SklearnConverter:
    name = "sklearn"
    suffixes = (".joblib", ".pkl")
    unpickles = True

    def convert(self, source: Path, sample: Feeds | np.ndarray | None, opset: int) -> Conversion:
        import sklearn
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType

        estimator = load_estimator(source)
        features = getattr(estimator, "n_features_in_", None)
        if features is None:
            raise BadInputError(f"{source.name}: the estimator is not fitted (no n_features_in_)")
        specs = [{"name": INPUT_NAME, "dtype": "float32", "shape": [None, int(features)]}]
        feeds = fit_sample(sample, specs) if sample is not None else synthesize_sample(specs)
        try:
            with silenced():
                getattr(estimator, _methods(estimator, 1)[0])(feeds[INPUT_NAME])
        except Exception as error:
            raise BadInputError(f"the model cannot run on the sample: {one_line(error)}") from None
        options = {id(step): {"zipmap": False} for step in _steps(estimator) if hasattr(step, "predict_proba")}
        try:
            with silenced("skl2onnx"):
                model = to_onnx(
                    estimator,
                    initial_types=[(INPUT_NAME, FloatTensorType([None, int(features)]))],
                    target_opset={"": opset, "ai.onnx.ml": 1},
                    options=options or None,
                )
        except Exception as error:
            raise UnsupportedModelError(f"skl2onnx cannot convert {type(estimator).__name__}: {one_line(error)}") from None
        _dedupe_opsets(model)
        return Conversion(model, _reference(estimator, model), feeds, "sklearn", sklearn.__version__)


def _dedupe_opsets(model: onnx.ModelProto) -> None:
    """skl2onnx can list one domain twice in opset_import; keep the highest version of each."""
    highest: dict[str, int] = {}
    for entry in model.opset_import:
        highest[entry.domain] = max(highest.get(entry.domain, 0), entry.version)
    del model.opset_import[:]
    for domain, version in highest.items():
        model.opset_import.add(domain=domain, version=version)
