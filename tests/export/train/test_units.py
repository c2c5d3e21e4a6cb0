"""Fast checks of the training-step pieces on hand-built graphs: choosing, cutting, locating, matching, flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edgecloud.cli import main as cli
from export.errors import BadInputError, ExportError
from export.train.locations import locate, raw_data_ranges
from export.train.reference import Variable, match
from export.train.spec import TrainingOptions
from export.train.trainable import check_spec, choose, default_spec, split


def mlp(final: str | None = "Softmax", bias_values: float = 0.0) -> onnx.ModelProto:
    """x[?,4] → MatMul W1 + b1 → Relu → MatMul W2 + b2 → (final)."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(4, 5)).astype(np.float32), "W1"),
        numpy_helper.from_array(np.full(5, bias_values, np.float32), "b1"),
        numpy_helper.from_array(rng.normal(size=(5, 3)).astype(np.float32), "W2"),
        numpy_helper.from_array(np.full(3, bias_values, np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "W2"], ["z0"]),
        helper.make_node("Add", ["z0", "b2"], ["z" if final else "y"]),
    ]
    if final:
        nodes.append(helper.make_node(final, ["z"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 3])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_head_is_the_last_dense_layer_and_cuts_after_the_relu() -> None:
    model = mlp()
    assert default_spec(model)[0] == "head"
    parameters = choose(model, "head")
    assert parameters == ["W2", "b2"]
    parts = split(model, "head", parameters)
    assert parts.cut == ["h2"] and parts.outputs == ["y"]
    assert [node.op_type for node in parts.tail] == ["MatMul", "Add", "Softmax"]


def test_last_n_and_all_take_the_layers_from_the_end() -> None:
    model = mlp(final=None)
    assert choose(model, "last:1") == ["W2", "b2"]
    assert choose(model, "last:2") == choose(model, "all") == ["W1", "b1", "W2", "b2"]
    assert split(model, "all", choose(model, "all")).cut == ["x"]
    with pytest.raises(BadInputError, match="only 2 layers with parameters"):
        choose(model, "last:3")


def test_no_dense_end_means_no_step_and_says_why() -> None:
    model = mlp()
    model.graph.node.append(helper.make_node("Exp", ["y"], ["e"]))
    model.graph.output[0].name = "e"
    spec, why = default_spec(model)
    assert spec == "none" and "Exp" in why


@pytest.mark.parametrize("bad", ["heads", "last:0", "last:x", "last", "ALL", ""])
def test_bad_trainable_values_are_refused(bad: str) -> None:
    with pytest.raises(BadInputError, match="--trainable"):
        check_spec(bad)


@pytest.mark.parametrize(
    "options, flag",
    [
        (TrainingOptions(loss="mae"), "--loss"),
        (TrainingOptions(optimizer="rmsprop"), "--optimizer"),
        (TrainingOptions(learning_rate=-1.0), "--learning-rate"),
        (TrainingOptions(learning_rate=float("nan")), "--learning-rate"),
        (TrainingOptions(batch_size=0), "--train-batch"),
    ],
)
def test_bad_option_values_name_their_flag(options: TrainingOptions, flag: str) -> None:
    with pytest.raises(BadInputError, match=flag):
        options.check()


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--trainable", "last:0"], "--trainable"),
        (["--loss", "hinge"], "--loss"),
        (["--optimizer", "lion"], "--optimizer"),
        (["--train-batch", "0"], "--train-batch"),
        (["--learning-rate", "0"], "--learning-rate"),
    ],
)
def test_cli_bad_training_flags_exit_2_with_one_line(tmp_path: Path, capsys, flags: list[str], named: str) -> None:
    model = tmp_path / "m.keras"
    model.write_bytes(b"never read: the flags are checked first")
    code = cli(["export", str(model), "--name", "m", "--out", str(tmp_path / "reg"), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and named in err


def test_locations_are_the_raw_data_bytes(tmp_path: Path) -> None:
    model = mlp(bias_values=0.0)  # b1 and b2 hold equal (zero) bytes: offsets must still differ
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    found = locate(path, values)
    data = path.read_bytes()
    for name, where in found.items():
        raw = data[where["offset"] : where["offset"] + where["length"]]
        assert np.array_equal(np.frombuffer(raw, "<f4").reshape(values[name].shape), values[name])
    assert found["b1"]["offset"] != found["b2"]["offset"]
    assert set(raw_data_ranges(data)) == set(values)
    with pytest.raises(ExportError, match="does not hold"):
        locate(path, {"W1": values["W1"] + 1})


def test_equal_zero_biases_are_told_apart_by_layer() -> None:
    rng = np.random.default_rng(0)
    k1, k2 = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    variables = [
        Variable("dense/kernel", "dense", k1),
        Variable("dense/bias", "dense", np.zeros(3, np.float32)),
        Variable("out/kernel", "out", k2),
        Variable("out/bias", "out", np.zeros(3, np.float32)),
    ]
    onnx_names = {"model/out_1/MatMul/ReadVariableOp:0": k2, "model/out_1/BiasAdd/ReadVariableOp:0": np.zeros(3, np.float32)}
    found = match(onnx_names, variables)
    assert found["model/out_1/BiasAdd/ReadVariableOp:0"].key == "out/bias"
    assert found["model/out_1/MatMul/ReadVariableOp:0"].key == "out/kernel"
    transposed = match({"fc.weight": k2.T.copy()}, [Variable("linear.weight", "linear", k2)])
    assert transposed["fc.weight"].transposed
    with pytest.raises(ExportError, match="cannot tell"):
        match({"bias": np.zeros(3, np.float32)}, variables[1::2])


@pytest.mark.torch
def test_the_default_goes_on_without_a_step_where_none_can_be_built(tmp_path: Path) -> None:
    """A fixed batch of 1 cannot take --train-batch 32: by default one progress line, explicitly an error."""
    from export.conversion import Conversion
    from export.errors import UnsupportedModelError
    from export.train.build import training_variant

    model = mlp()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    conversion = Conversion(model, lambda feeds: {}, {"x": np.zeros((1, 4), np.float32)}, "torch", "test", trainer=object())
    said: list[str] = []
    assert training_variant(conversion, TrainingOptions(), tmp_path, ["model.onnx"], tolerance=1e-5, progress=said.append) == ({}, None)
    assert any("no training step" in line and "fixed batch" in line for line in said)
    with pytest.raises(UnsupportedModelError, match="--train-batch 1"):
        training_variant(conversion, TrainingOptions(trainable="head"), tmp_path, ["model.onnx"], tolerance=1e-5, progress=said.append)


def test_kernels_match_up_to_axes_and_recurrent_weights_up_to_gate_blocks() -> None:
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(5, 2, 4)).astype(np.float32)  # Keras Conv1D [k, in, out]
    onnx_kernel = np.transpose(kernel, (2, 1, 0)).reshape(4, 2, 1, 5)  # tf2onnx: [out, in, 1, k]
    found = match({"W": onnx_kernel}, [Variable("c1/kernel", "c1", kernel)])["W"]
    np.testing.assert_array_equal(found.onnx_layout(kernel, onnx_kernel.shape), onnx_kernel)
    lstm = rng.normal(size=(3, 4 * 2)).astype(np.float32)  # Keras LSTM kernel [in, 4H], gates i, f, c, o
    i, f, c, o = np.split(lstm.T, 4)
    onnx_w = np.concatenate([i, o, f, c]).reshape(1, 8, 3)  # ONNX W [1, 4H, in], gates i, o, f, c
    with pytest.raises(ExportError, match="holds no framework variable"):
        match({"W": onnx_w}, [Variable("lstm/kernel", "lstm", lstm)])
    gated = match({"W": onnx_w}, [Variable("lstm/kernel", "lstm", lstm)], recurrent={"W": 4})["W"]
    assert gated.gates == (0, 3, 1, 2)
    np.testing.assert_array_equal(gated.onnx_layout(lstm, onnx_w.shape), onnx_w)
    bias = np.repeat(np.array([0, 1, 0, 0], np.float32), 2)  # Keras's unit_forget_bias: i, c, o blocks all equal
    onnx_b = np.concatenate([np.split(bias, 4)[i] for i in (0, 3, 1, 2)]).reshape(1, 8)
    variables = [Variable("lstm/kernel", "lstm", lstm), Variable("lstm/bias", "lstm", bias)]
    both = match({"W": onnx_w, "B": onnx_b}, variables, recurrent={"W": 4, "B": 4})
    assert both["B"].gates == (0, 3, 1, 2)  # the kernel's order, not the first that fits


def test_a_chosen_layer_missing_a_framework_variable_fails_naming_it() -> None:
    from export.train.reference import complete

    variables = [
        Variable("out/kernel", "out", np.ones((2, 2), np.float32)),
        Variable("out/bias", "out", np.zeros(2, np.float32)),
        Variable("hidden/kernel", "hidden", np.full((2, 2), 2, np.float32)),
    ]
    head = {"MatMul:0": match({"MatMul:0": np.ones((2, 2), np.float32)}, variables[:1])["MatMul:0"]}
    with pytest.raises(ExportError, match="'out/bias' \\[2\\] of layer 'out'"):
        complete(head, variables, "head")
    complete({**head, "b": match({"b": np.zeros(2, np.float32)}, variables[1:2])["b"]}, variables, "head")
    with pytest.raises(ExportError, match="--trainable all: the framework variable 'hidden/kernel'"):
        complete({**head, "b": match({"b": np.zeros(2, np.float32)}, variables[1:2])["b"]}, variables, "all")


@pytest.mark.parametrize("scale, layers_found", [([1.0, 2.0, 3.0], [["gamma", "beta"], ["W"]]), (2.0, [["W"]])])
def test_a_layer_norm_spelt_out_below_opset_17_is_a_layer_with_its_scale_and_bias(scale, layers_found) -> None:
    """torch.onnx at opset 13: (x - mean) / Sqrt(var + eps) * gamma + beta; a scalar factor there is a constant, not a layer."""
    from export.train.trainable import layers

    def const(name: str, value) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, np.float32), name)

    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[-1]),
        helper.make_node("Sub", ["x", "mean"], ["centred"]),
        helper.make_node("Pow", ["centred", "two"], ["squared"]),
        helper.make_node("ReduceMean", ["squared"], ["var"], axes=[-1]),
        helper.make_node("Add", ["var", "eps"], ["var_eps"]),
        helper.make_node("Sqrt", ["var_eps"], ["std"]),
        helper.make_node("Div", ["centred", "std"], ["normed"]),
        helper.make_node("Mul", ["normed", "gamma"], ["scaled"]),
        helper.make_node("Add", ["scaled", "beta"], ["shifted"]),
        helper.make_node("MatMul", ["shifted", "W"], ["y"]),
    ]
    initializers = [
        const("two", 2.0),
        const("eps", 1e-5),
        const("gamma", scale),
        const("beta", [0.1, 0.2, 0.3]),
        const("W", np.ones((3, 2))),
    ]
    graph = helper.make_graph(
        nodes,
        "norm",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 2])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert [layer.parameters for layer in layers(model)] == layers_found
