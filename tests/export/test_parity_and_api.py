"""Parity reports name the failing output and its figure; labels match exactly; the PyTorch Python API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgecloud.cli import main as cli
from export.errors import BadInputError, ParityError
from export.verify import compare, require


def constant_runner(outputs):
    return lambda feeds: outputs


def test_integer_labels_must_match_exactly():
    feeds = [{"x": np.zeros((2, 3), dtype="float32")}]
    want = {"label": np.array([1, 2]), "probabilities": np.array([[0.2, 0.8], [0.6, 0.4]], dtype="float32")}
    off_by_one = {"label": np.array([1, 3]), "probabilities": want["probabilities"]}
    report = compare(constant_runner(want), constant_runner(off_by_one), feeds, tolerance=10.0)
    assert report.exact == ["label"]
    assert not report.passed, "a wrong label passes no tolerance"
    with pytest.raises(ParityError, match=r"output 'label' differs by 1 \(must match exactly\) over 1 inputs"):
        require(report, against="sklearn 1.9.1")


def test_string_labels_compare_exactly():
    feeds = [{"x": np.zeros((2, 3), dtype="float32")}]
    report = compare(
        constant_runner({"label": np.array(["a", "b"])}), constant_runner({"label": np.array(["a", "b"], dtype=object)}), feeds
    )
    assert report.passed and report.per_output == {"label": 0.0}


def test_float_failure_names_the_output_and_the_figure():
    feeds = [{"x": np.zeros((1, 2), dtype="float32")}]
    want = {"ok": np.zeros(2, dtype="float32"), "bad": np.zeros(2, dtype="float32")}
    got = {"ok": np.zeros(2, dtype="float32"), "bad": np.array([0.0, 0.003], dtype="float32")}
    with pytest.raises(ParityError, match=r"output 'bad' differs by 0\.003 \(\|diff\| <= 0\.0001 \+ 0\.001\*\|reference\|\)"):
        require(compare(constant_runner(want), constant_runner(got), feeds), against="torch")


@pytest.mark.torch
def test_parity_failure_through_the_cli_is_exit_1_with_the_figure(zoo_model, tmp_path, capsys):
    model_path, sample_path = zoo_model("torch_conv1d_torchscript")
    code = cli(
        ["export", str(model_path), "--sample", str(sample_path), "--name", "strict", "--out", str(tmp_path), "--atol", "0", "--rtol", "0"]
    )
    error = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("export: ")]
    assert code == 1
    assert len(error) == 1
    assert error[0].startswith("edgecloud export: error: parity failed against torch ")
    assert "output 'output' differs by " in error[0] and "(|diff| <= 0 + 0*|reference|)" in error[0]
    assert not (tmp_path / "strict").exists()


@pytest.mark.torch
def test_export_torch_module_writes_the_same_contract(tmp_path):
    import torch

    from export.torch_module import export_torch_module

    class TwoInTwoOut(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mix = torch.nn.Linear(4, 4)

        def forward(self, a: torch.Tensor, b: torch.Tensor):
            return self.mix(a) + b, torch.sigmoid(a * b)

    torch.manual_seed(0)
    sample = (torch.randn(1, 4), torch.randn(1, 4))
    result = export_torch_module(
        TwoInTwoOut(), sample, name="twoio", version="3", out=tmp_path, input_names=["a", "b"], output_names=["mixed", "gate"]
    )
    manifest = json.loads((tmp_path / "twoio" / "3" / "model.json").read_text())
    assert result.manifest == manifest
    assert manifest["source"] == {"framework": "torch", "framework_version": torch.__version__, "file": "TwoInTwoOut (nn.Module)"}
    assert manifest["inputs"] == [
        {"name": "a", "dtype": "float32", "shape": [None, 4]},
        {"name": "b", "dtype": "float32", "shape": [None, 4]},
    ]
    assert [output["name"] for output in manifest["outputs"]] == ["mixed", "gate"]
    assert manifest["parity"]["source_vs_onnxruntime"]["passed"] is True
    assert json.loads((tmp_path / "twoio" / "latest.json").read_text())["version"] == "3"


@pytest.mark.torch
def test_export_torch_module_refuses_bad_arguments(tmp_path):
    import torch

    from export.torch_module import export_torch_module

    module = torch.nn.Linear(4, 2)
    with pytest.raises(BadInputError, match="the model returns 1 outputs, 2 output names were given"):
        export_torch_module(module, torch.randn(1, 4), name="m", version="1", out=tmp_path, output_names=["a", "b"])
    with pytest.raises(BadInputError, match="opset 17 at most"):
        export_torch_module(module, torch.randn(1, 4), name="m", version="1", out=tmp_path, opset=18)
    with pytest.raises(BadInputError, match="the model cannot run on the sample"):
        export_torch_module(module, torch.randn(1, 5), name="m", version="1", out=tmp_path)


@pytest.mark.torch
def test_exported_program_needs_no_sample_when_only_the_batch_is_free(zoo_model, tmp_path):
    model_path, _ = zoo_model("torch_mlp_pt2")
    assert cli(["export", str(model_path), "--name", "pt2", "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "pt2" / "1" / "model.json").read_text())
    assert manifest["inputs"] == [{"name": "x", "dtype": "float32", "shape": [None, 8]}]


@pytest.mark.mxnet
def test_mxnet_export_reaches_another_opset_through_the_version_converter(zoo_model, tmp_path, capsys):
    model_path, sample_path = zoo_model("mxnet_dense")
    argv = ["export", str(model_path), "--sample", str(sample_path), "--out", str(tmp_path)]
    assert cli([*argv, "--name", "mx15", "--opset", "15"]) == 0
    manifest = json.loads((tmp_path / "mx15" / "1" / "model.json").read_text())
    assert manifest["opset"] == 15
    assert manifest["ir_version"] <= 10
    assert manifest["parity"]["source_vs_onnxruntime"]["passed"] is True

    capsys.readouterr()
    assert cli([*argv, "--name", "mx11", "--opset", "11"]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("edgecloud export: error: --opset 11: MXNet writes opset 13")
    assert "No Adapter From Version $13 for Flatten" in error
