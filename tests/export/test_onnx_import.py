"""`edgecloud export model.onnx`: a file brought as is is checked, shape-inferred, proven against
onnxruntime on the file as given, lowered with pinned dims recorded, and refused with one line
(exit 2) when it is corrupt, invalid, of an unsupported opset, reaches outside its folder, has no
inputs, or the sample or a frozen value does not fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edgecloud.cli import main as cli
from export.verify import onnxruntime_runner

from . import onnx_graphs


def save(model: onnx.ModelProto, folder: Path, name: str = "model.onnx", **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    onnx.save(model, path, **kwargs)
    return path


def export(argv: list[str], registry: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = cli(["export", *argv, "--name", "imported", "--out", str(registry)])
    return code, capsys.readouterr().err


def test_resize_model_exports_with_pinned_dims_and_parity(tmp_path, capsys):
    model, sample = onnx_graphs.nearest_resize()
    path = save(model, tmp_path / "src", "yolo-like.onnx")
    np.save(tmp_path / "x.npy", sample["x"])
    code, err = export([str(path)], tmp_path / "reg", capsys)
    assert code == 2 and "free dimensions" in err and "--sample" in err  # h and w are free
    code, err = export([str(path), "--sample", str(tmp_path / "x.npy")], tmp_path / "reg", capsys)
    assert code == 0, err
    version = tmp_path / "reg" / "imported" / "1"
    manifest = json.loads((version / "model.json").read_text())
    assert manifest["source"]["framework"] == "onnx" and manifest["source"]["file"] == "yolo-like.onnx"
    assert manifest["opset"] == 13
    assert manifest["inputs"] == [{"name": "x", "dtype": "float32", "shape": [1, 3, None, None]}]
    assert manifest["parity"]["source_vs_onnxruntime"]["max_abs_diff"] == 0.0
    edge = manifest["edge"]
    assert edge["runtime"] == "onnxjs" and edge["file"] == "model.edge.onnx"
    assert edge["inputs"] == [{"name": "x", "dtype": "float32", "shape": [1, 3, 5, 7]}]
    want = onnxruntime_runner(model)(sample)["y"]
    got = onnxruntime_runner(str(version / "model.edge.onnx"))(sample)["y"]
    assert np.abs(want - got).max() <= 1e-6


def test_external_data_inside_the_folder_is_taken_and_inlined(tmp_path, capsys):
    model, sample = onnx_graphs.hard_activations()
    path = save(model, tmp_path / "src", save_as_external_data=True, location="weights.bin", size_threshold=0)
    assert (tmp_path / "src" / "weights.bin").is_file()
    code, err = export([str(path)], tmp_path / "reg", capsys)
    assert code == 0, err
    cloud = onnx.load(str(tmp_path / "reg" / "imported" / "1" / "model.onnx"), load_external_data=False)
    assert all(init.data_location != onnx.TensorProto.EXTERNAL for init in cloud.graph.initializer)


def test_frozen_input_becomes_a_constant_and_parity_feeds_it(tmp_path, capsys):
    model, sample = onnx_graphs.shape_arithmetic_if()
    path = save(model, tmp_path / "src", "vad.onnx")
    np.save(tmp_path / "x.npy", sample["x"])
    code, err = export([str(path), "--sample", str(tmp_path / "x.npy"), "--freeze-input", "sr=16000"], tmp_path / "reg", capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "reg" / "imported" / "1" / "model.json").read_text())
    assert [spec["name"] for spec in manifest["inputs"]] == ["x"]
    assert manifest["edge"]["runtime"] == "onnxjs", manifest["edge"]["blockers"]


def _outside(tmp_path: Path) -> Path:
    model, _ = onnx_graphs.hard_activations()
    path = save(model, tmp_path / "src", save_as_external_data=True, location="w.bin", size_threshold=0)
    (tmp_path / "secret.bin").write_bytes((tmp_path / "src" / "w.bin").read_bytes())
    loaded = onnx.load(str(path), load_external_data=False)
    for entry in loaded.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../secret.bin"
    return save(loaded, tmp_path / "src")


def _checker_refuses(tmp_path: Path) -> Path:
    model, _ = onnx_graphs.pow_and_max()
    model.graph.node[1].input[1] = "nowhere"
    return save(model, tmp_path / "src")


def _opset(tmp_path: Path) -> Path:
    model, _ = onnx_graphs.pow_and_max()
    model.opset_import[0].version = 99
    return save(model, tmp_path / "src")


def _no_inputs(tmp_path: Path) -> Path:
    node = helper.make_node("Constant", [], ["y"], value=numpy_helper.from_array(np.ones(2, np.float32)))
    return save(onnx_graphs.make([node], [], [onnx_graphs.info("y", [2])]), tmp_path / "src")


def _truncated(tmp_path: Path) -> Path:
    path = save(onnx_graphs.hard_activations()[0], tmp_path / "src")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"not a model at all\n" * 10)
    return path


def _sample(tmp_path: Path) -> list[str]:
    np.save(tmp_path / "bad.npy", np.zeros((1, 3, 6, 6), np.float32))
    return ["--sample", str(tmp_path / "bad.npy")]


CASES = {
    "corrupt": (_corrupt, [], "not a readable ONNX model"),
    "truncated": (_truncated, [], "not a readable ONNX model"),
    "checker": (_checker_refuses, [], "is not valid ONNX"),
    "opset": (_opset, [], "uses opset 99; supported: 7 to"),
    "outside": (_outside, [], "external data must be a file inside the model's folder"),
    "no-inputs": (_no_inputs, [], "has no inputs"),
    "sample": (lambda tmp: save(onnx_graphs.hard_activations()[0], tmp / "src"), "sample", "has shape [1, 3, 6, 6]"),
    "freeze-name": (lambda tmp: save(onnx_graphs.pow_and_max()[0], tmp / "src"), ["--freeze-input", "sr=1"], "has no input 'sr'"),
    "freeze-form": (lambda tmp: save(onnx_graphs.pow_and_max()[0], tmp / "src"), ["--freeze-input", "x"], "expected NAME=VALUE"),
    "freeze-all": (lambda tmp: save(onnx_graphs.pow_and_max()[0], tmp / "src"), ["--freeze-input", "x=[[1,2,3,4,5]]"], "every input"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_onnx_input_exits_2_with_one_line(case, tmp_path, capsys):
    make, extra, expected = CASES[case]
    path = make(tmp_path)
    extra = _sample(tmp_path) if extra == "sample" else extra
    code, err = export([str(path), *extra], tmp_path / "reg", capsys)
    lines = [line for line in err.splitlines() if "error" in line]
    assert code == 2, err
    assert len(lines) == 1 and expected in lines[0], err
    assert "Traceback" not in err


def test_freeze_input_refused_for_other_frameworks(tmp_path, capsys):
    path = tmp_path / "m.keras"
    path.write_bytes(b"x")
    code, err = export([str(path), "--freeze-input", "a=1"], tmp_path / "reg", capsys)
    assert code == 2 and "applies to .onnx files" in err
