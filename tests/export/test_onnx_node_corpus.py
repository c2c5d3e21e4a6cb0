"""A fixed slice of ONNX's own node tests (generated in-process by `onnx.backend.test`) through the
`.onnx` import with their own inputs as the sample: each exports with its own expected outputs
reproduced, or is refused in one line; never a traceback. The whole corpus:
`python -m benchmarks.onnx_node_corpus` (docs/bring-your-own-onnx.md has its table)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from benchmarks.onnx_node_corpus import EXPORTED, REFUSED, node_cases, run_case, sample_of
from export.errors import BadInputError
from export.pipeline import export_model
from export.verify import accepted_inputs, parity_inputs

# Integer inputs that are shapes, indices, sizes or counts (random values break them: these ended in
# a traceback before), operators with a function body onnx's strict inference fails on (mvn), and
# plain ones from every family.
EXPORTS = [
    "test_col2im",
    "test_reshape_reordered_all_dims",
    "test_reshape_negative_dim",
    "test_split_variable_parts_1d_opset13",
    "test_nllloss_NCd1d2_reduction_mean",
    "test_resize_upsample_sizes_nearest",
    "test_resize_downsample_scales_nearest",
    "test_nonmaxsuppression_suppress_by_IOU",
    "test_mvn",
    "test_gather_negative_indices",
    "test_scatter_elements_with_axis",
    "test_tile",
    "test_expand_dim_changed",
    "test_constantofshape_int_zeros",
    "test_slice_negative_axes",
    "test_loop11",
    "test_if",
    "test_lstm_defaults",
    "test_basic_conv_with_padding",
    "test_maxpool_2d_pads",
    "test_softmax_axis_1",
    "test_gemm_default_scalar_bias",
    "test_argmax_default_axis_example",
    "test_cumsum_1d",
    "test_where_example",
    "test_add_bcast",
    "test_matmul_2d",
    "test_relu",
]
REFUSALS = {
    "test_string_concat": "input 'x' holds STRING tensors",
    "test_equal_string": "input 'x' holds STRING tensors",
    "test_identity_sequence": "output 'y' is a sequence",
    "test_onehot_with_axis": "uses opset 28; supported: 7 to 26",
}


@pytest.fixture(scope="module")
def cases():
    wanted = set(EXPORTS) | set(REFUSALS)
    found = {case.name: case for case in node_cases() if case.name in wanted}
    assert set(found) == wanted, f"node tests missing from this onnx: {sorted(wanted - set(found))}"
    return found


@pytest.mark.parametrize("name", EXPORTS)
def test_node_model_exports_with_its_own_outputs_reproduced(name, cases):
    assert run_case(cases[name]) == (name, EXPORTED, "")


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_node_model_is_refused_in_one_line(name, cases):
    _, outcome, message = run_case(cases[name])
    assert outcome == REFUSED and "\n" not in message, message
    assert REFUSALS[name] in message, message


def _model(input_type: onnx.TypeProto, opset: int, op: str = "Identity") -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"])],
        "g",
        [helper.make_value_info("x", input_type)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("elem, opset", [(TensorProto.FLOAT8E4M3FN, 19), (TensorProto.INT4, 21), (TensorProto.UINT4, 21)])
def test_inputs_a_request_cannot_carry_are_refused_in_one_line(elem, opset, tmp_path):
    model = _model(helper.make_tensor_type_proto(elem, [2]), opset, op="Cast")
    model.graph.node[0].attribute.append(helper.make_attribute("to", TensorProto.FLOAT))
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(BadInputError, match=f"input 'x' holds {TensorProto.DataType.Name(elem)} tensors"):
        export_model(tmp_path / "m.onnx", name="m", version="1", out=tmp_path / "reg")


def test_an_optional_input_is_refused_in_one_line(tmp_path):
    optional = helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))
    model = _model(optional, 18, op="OptionalGetElement")
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(BadInputError, match="input 'x' is a optional; only tensor inputs"):
        export_model(tmp_path / "m.onnx", name="m", version="1", out=tmp_path / "reg")


def test_empty_integer_inputs_stay_empty_and_shape_inputs_keep_the_samples_values():
    sample = {"x": np.ones((2, 3), np.float32), "shape": np.array([1, 6], np.int64), "none": np.zeros((0,), np.int64)}
    drawn = parity_inputs(sample, count=3)
    assert all(feeds["none"].shape == (0,) for feeds in drawn)

    def reshape(feeds):
        return {"y": feeds["x"].reshape(tuple(feeds["shape"]))}

    inputs, kind = accepted_inputs(reshape, sample, count=3)
    assert kind.startswith("random floats; integer") and len(inputs) == 4
    assert all(np.array_equal(feeds["shape"], [1, 6]) for feeds in inputs)
    assert not np.array_equal(inputs[1]["x"], sample["x"])  # the floats are still drawn at random


def test_strict_shape_inference_failing_on_a_valid_file_is_a_warning(cases, tmp_path):
    """MeanVarianceNormalization's function body fails onnx's strict inference; the checker and onnxruntime accept it."""
    case = cases["test_mvn"]
    (tmp_path / "mvn.onnx").write_bytes(case.model)
    np.savez(tmp_path / "x.npz", **sample_of(onnx.ModelProto.FromString(case.model), case.inputs))
    result = export_model(tmp_path / "mvn.onnx", name="mvn", version="1", out=tmp_path / "reg", sample=tmp_path / "x.npz", edge=False)
    [warning] = result.manifest["source"]["warnings"]
    assert warning.startswith("onnx's strict shape inference fails (") and "onnxruntime accept the file" in warning
