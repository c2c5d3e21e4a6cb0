"""The parity criterion (export/parity.py) tells a wrong operator from float32 rounding, on every model
here: hand-built MLP and CNN, and the real third-party models of tests/export/real_models.py.

Faults injected into the graph (each must fail): a weight read in the transposed layout, a missing
bias, a Softmax over the wrong axis, and ONNX.js cpu's batch-Conv bug (every image of a batch but
the first comes out wrong). Rounding of the same computation (each must pass): onnxruntime with
its graph optimisations off (another summation order, no fused kernels), and a float64 evaluation
of the same graph by onnx's reference implementation.
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from export.parity import DEFAULT, Criterion
from export.verify import compare, onnxruntime_runner, parity_inputs
from tests.builders import mlp_model
from tests.export.real_models import MODELS, missing

REAL = {model.name: model for model in MODELS}


def cnn_model() -> onnx.ModelProto:
    """Conv (bias) → Relu → Flatten → Gemm (bias) → Softmax, batch free."""
    rng = np.random.default_rng(1)
    weights = {
        "conv.w": rng.normal(0, 0.5, (4, 3, 3, 3)),
        "conv.b": rng.normal(0, 0.5, 4),
        "fc.w": rng.normal(0, 0.3, (5, 4 * 6 * 6)),
        "fc.b": rng.normal(0, 0.5, 5),
    }
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["c"]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("Flatten", ["r"], ["f"]),
            helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["z"], transB=1),
            helper.make_node("Softmax", ["z"], ["y"], axis=-1),
        ],
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5])],
        [numpy_helper.from_array(value.astype(np.float32), name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


SAMPLES: dict[int, dict[str, np.ndarray]] = {}


def text_image() -> np.ndarray:
    """Printed lines on white, normalised as PaddleOCR does: on random noise the text detector's map
    is ~1e-7 everywhere, below any rounding floor, so no criterion could see a fault there."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (96, 96), "white")
    draw = ImageDraw.Draw(image)
    for line, top in enumerate(range(8, 90, 14)):
        draw.text((4, top), "Hello world 42"[: 14 - line], fill="black")
    pixels = np.asarray(image, np.float32) / 255.0
    normalised = (pixels - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    return normalised.transpose(2, 0, 1)[None].astype(np.float32)


def constants_as_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """paddle2onnx and spox hold weights in Constant nodes: as initializers, the faults can reach them."""
    kept = []
    for node in model.graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None) if node.op_type == "Constant" else None
        if value is None:
            kept.append(node)
            continue
        tensor = onnx.TensorProto()
        tensor.CopyFrom(value)
        tensor.name = node.output[0]
        model.graph.initializer.append(tensor)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return model


def subject(name: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """(model, sample with any frozen inputs) by name."""
    model, sample = _subject(name)
    model = constants_as_initializers(model)
    SAMPLES[id(model)] = sample
    return model, sample


def _subject(name: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    if name == "mlp":
        return mlp_model(), {"x": np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)}
    if name == "cnn":
        return cnn_model(), {"x": np.random.default_rng(0).normal(size=(3, 3, 8, 8)).astype(np.float32)}
    absent = missing()
    assert not absent, f"real models not fetched ({', '.join(absent)}): run `make real-models`"
    real = REAL[name]
    model = onnx.load(str(real.path))
    sample = text_image() if name == "ppocr-det" else real.sample()
    sample = sample if isinstance(sample, dict) else {model.graph.input[0].name: sample}
    for pair in real.freeze:
        key, value = pair.split("=")
        sample[key] = np.array(int(value), np.int64)
    return model, sample


SUBJECTS = ["mlp", "cnn", *sorted(REAL)]


def _consumers(model: onnx.ModelProto, ops: tuple[str, ...], index: int) -> list[str]:
    return [node.input[index] for node in model.graph.node if node.op_type in ops and len(node.input) > index and node.input[index]]


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {init.name: init for init in model.graph.initializer}


def transposed_weight(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """The largest Conv/Gemm/MatMul weight read in the transposed layout (its buffer as rows ↔ columns)."""
    inits = _initializers(model)
    names = [n for n in _consumers(model, ("Conv", "Gemm", "MatMul"), 1) if n in inits and inits[n].data_type == TensorProto.FLOAT]
    for name in sorted(set(names), key=lambda n: -int(np.prod(inits[n].dims))):
        weight = numpy_helper.to_array(inits[name])
        if weight.ndim < 2 or weight.shape[0] < 2 or weight.size // weight.shape[0] < 2:
            continue
        wrong = weight.reshape(weight.shape[0], -1).T.reshape(weight.shape)
        if not np.array_equal(wrong, weight):
            inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(wrong), name))
            return model
    return None


def missing_bias(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """The first Conv/Gemm with a non-zero bias loses it (else the first Add of a non-zero constant vector)."""
    inits = _initializers(model)
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm") and len(node.input) > 2 and node.input[2] in inits:
            if np.any(numpy_helper.to_array(inits[node.input[2]]) != 0):
                del node.input[2]
                return model
    for node in model.graph.node:
        bias = [name for name in node.input if name in inits and inits[name].data_type == TensorProto.FLOAT]
        if node.op_type == "Add" and bias and np.count_nonzero(numpy_helper.to_array(inits[bias[0]])) > 1:
            value = numpy_helper.to_array(inits[bias[0]])
            inits[bias[0]].CopyFrom(numpy_helper.from_array(np.zeros_like(value), bias[0]))
            return model
    return None


def wrong_axis(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """The last node with an `axis` (Softmax, Concat, Gather, Flatten…) that can take another axis and
    then computes something else (on a [1, N] tensor Softmax-11 over axis 0 or 1 is the same function)."""
    reference, sample = onnxruntime_runner(model), SAMPLES[id(model)]
    want = reference(sample)
    for index in reversed(range(len(model.graph.node))):
        attribute = next((a for a in model.graph.node[index].attribute if a.name == "axis"), None)
        if attribute is None:
            continue
        for axis in (0, 1, -1, 2):
            if axis == attribute.i:
                continue
            candidate = copy.deepcopy(model)
            next(a for a in candidate.graph.node[index].attribute if a.name == "axis").i = axis
            try:
                got = onnxruntime_runner(candidate)(sample)
            except Exception:  # noqa: BLE001 - that axis does not fit the tensor: try another
                continue
            if any(got[k].shape != want[k].shape or not np.array_equal(got[k], want[k]) for k in want):
                return candidate
    return None


FAULTS = {"transposed weight": transposed_weight, "missing bias": missing_bias, "wrong axis": wrong_axis}


def zeroed_batch_rows(run):
    """ONNX.js cpu's batch-Conv bug: every example of a batch but the first comes out as zeros."""

    def broken(feeds):
        outputs = run(feeds)
        return {
            name: np.concatenate([value[:1], np.zeros_like(value[1:])]) if value.ndim and value.shape[0] > 1 else value
            for name, value in outputs.items()
        }

    return broken


def onnxruntime_unoptimised(model: onnx.ModelProto):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return lambda feeds: dict(zip(names, session.run(names, feeds)))


@pytest.mark.parametrize("name", SUBJECTS)
def test_every_injected_fault_fails_the_criterion(name):
    model, sample = subject(name)
    reference = onnxruntime_runner(model)
    inputs = parity_inputs(sample, count=3)
    applied = []
    for fault, inject in FAULTS.items():
        copied = copy.deepcopy(model)
        SAMPLES[id(copied)] = sample
        broken = inject(copied)
        if broken is None:
            continue
        applied.append(fault)
        report = compare(reference, onnxruntime_runner(broken), inputs, DEFAULT)
        assert not report.passed, f"{fault} passes on {name}: {report.as_json()}"
    assert len(applied) >= 2, f"{name}: only {applied} applied"


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_the_batch_conv_bug_fails_the_criterion(name):
    model, sample = subject(name)
    assert sample["x"].shape[0] == 3
    report = compare(onnxruntime_runner(model), zeroed_batch_rows(onnxruntime_runner(model)), [sample], DEFAULT)
    assert not report.passed and report.ratio > 100, report.as_json()


@pytest.mark.parametrize("name", SUBJECTS)
def test_float32_rounding_of_the_same_graph_passes(name):
    model, sample = subject(name)
    inputs = parity_inputs(sample, count=3)
    report = compare(onnxruntime_runner(model), onnxruntime_unoptimised(model), inputs, DEFAULT)
    assert report.passed, report.as_json()


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_float32_against_a_float64_evaluation_passes(name):
    model, sample = subject(name)
    wide = copy.deepcopy(model)
    for init in wide.graph.initializer:
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float64), init.name))
    for value in [*wide.graph.input, *wide.graph.output]:
        value.type.tensor_type.elem_type = TensorProto.DOUBLE
    exact = ReferenceEvaluator(wide)

    def float64(feeds):
        return dict(zip(exact.output_names, exact.run(None, {k: v.astype(np.float64) for k, v in feeds.items()})))

    report = compare(float64, onnxruntime_runner(model), parity_inputs(sample, count=3), DEFAULT)
    assert report.passed and report.max_abs_diff > 0, report.as_json()


def test_the_criterion_scales_with_the_output_and_not_below_its_floor():
    criterion = Criterion(atol=1e-5, rtol=1e-4)
    pixels = np.array([300.0, 0.5], np.float32)
    assert criterion.judge(pixels, pixels + np.array([0.02, 0.0], np.float32)).passed  # 6.7e-5 relative
    assert not criterion.judge(pixels, pixels + np.array([0.0, 0.001], np.float32)).passed  # 2e-3 on 0.5
    assert not criterion.judge(np.array([1, 2]), np.array([1, 3])).passed  # labels are exact
    assert not criterion.judge(np.array([np.nan, 1.0]), np.array([0.0, 1.0])).passed  # NaN where there was none
    assert criterion.judge(np.array([np.nan, 1.0]), np.array([np.nan, 1.0])).passed
    assert not criterion.judge(np.zeros((2, 3)), np.zeros((3, 2))).passed  # shape
    half = np.float16([0.75])
    assert criterion.judge(half, half + np.float16(4.9e-4)).passed  # one float16 ulp: its own rounding
    assert not criterion.judge(half, half + np.float16(4e-3)).passed
    assert not Criterion(atol=1e-9, rtol=0).judge(np.float32([1]), np.float32([1 + 2.4e-7])).passed  # float32: as asked
