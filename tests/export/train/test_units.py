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
        nodes, "mlp", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 3])], initializer=inits,
    )  # fmt: skip
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
    with pytest.raises(BadInputError, match="only 2 Dense/Linear layers"):
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
        Variable("dense/kernel", "dense", k1), Variable("dense/bias", "dense", np.zeros(3, np.float32)),
        Variable("out/kernel", "out", k2), Variable("out/bias", "out", np.zeros(3, np.float32)),
    ]  # fmt: skip
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
    assert training_variant(conversion, TrainingOptions(), tmp_path, ["model.onnx"], tolerance=1e-5,
                            progress=said.append) == ({}, None)  # fmt: skip
    assert any("no training step" in line and "fixed batch" in line for line in said)
    with pytest.raises(UnsupportedModelError, match="--train-batch 1"):
        training_variant(conversion, TrainingOptions(trainable="head"), tmp_path, ["model.onnx"], tolerance=1e-5,
                         progress=said.append)  # fmt: skip
