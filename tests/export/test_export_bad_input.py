"""Bad input to `edgecloud export`, for every framework: exit code 2 and one line naming the problem.

Unknown framework or file type, corrupt and truncated files, a sample that does not fit,
free dimensions without a sample, and layers/operators the converter cannot translate.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from edgecloud.cli import main as cli
from tests.export.zoo import export_flags

Case = Callable[[Callable, Path], tuple[list[str], str]]


def truncated(path: Path, folder: Path, name: str | None = None) -> Path:
    """The first half of a file, under the same kind of name."""
    copy = folder / (name or f"truncated-{path.name}")
    copy.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return copy


def garbage(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(b"this is not a model\n" * 8)
    return path


def wrong_sample(folder: Path, shape: tuple[int, ...]) -> Path:
    path = folder / f"wrong-{'x'.join(map(str, shape))}.npy"
    np.save(path, np.zeros(shape, dtype="float32"))
    return path


# --- models that only these tests need -----------------------------------------------------


def keras_free_time_axis(folder: Path) -> Path:
    import keras

    inputs = keras.Input((None, 3), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(inputs)))
    path = folder / "free_time.keras"
    model.save(path)
    return path


def keras_erfinv(folder: Path) -> Path:
    import keras

    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.ops.erfinv(keras.layers.Dense(4)(inputs)))
    path = folder / "erfinv.keras"
    model.save(path)
    return path


def torch_erfinv(folder: Path) -> Path:
    import torch

    class Erfinv(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.special.erfinv(torch.tanh(x))

    path = folder / "erfinv.pt"
    torch.jit.save(torch.jit.script(Erfinv()), path)
    return path


def torch_state_dict(folder: Path) -> Path:
    import torch

    path = folder / "weights.pt"
    torch.save(torch.nn.Linear(8, 3).state_dict(), path)
    return path


def sklearn_kernel_ridge(folder: Path) -> Path:
    import joblib
    from sklearn.kernel_ridge import KernelRidge

    x = np.random.default_rng(0).standard_normal((20, 5))
    path = folder / "kernel_ridge.joblib"
    joblib.dump(KernelRidge().fit(x, x[:, 0]), path)
    return path


def sklearn_not_an_estimator(folder: Path) -> Path:
    import joblib

    path = folder / "dict.joblib"
    joblib.dump({"weights": [1, 2, 3]}, path)
    return path


def mxnet_erfinv(folder: Path) -> Path:
    from export.mxnet_compat import import_mxnet

    mx = import_mxnet()

    class Erfinv(mx.gluon.HybridBlock):
        def hybrid_forward(self, F, x):  # noqa: N803 - Gluon's signature
            return F.erfinv(F.tanh(x))

    block = Erfinv()
    block.initialize()
    block.hybridize()
    block(mx.nd.zeros((1, 4)))
    block.export(str(folder / "erfinv"), epoch=0)
    return folder / "erfinv-symbol.json"


def mxnet_pair(zoo_model: Callable, folder: Path, *, symbol: bool, params: bool) -> Path:
    """The zoo's Dense net copied under a new prefix, with its symbol and/or params truncated."""
    sym_source, _ = zoo_model("mxnet_dense")
    (params_source,) = sorted(sym_source.parent.glob("net-*.params"))
    prefix = f"broken_{int(symbol)}{int(params)}"
    sym_path = folder / f"{prefix}-symbol.json"
    shutil.copy(sym_source, sym_path)
    shutil.copy(params_source, folder / f"{prefix}-0000.params")
    if symbol:
        truncated(sym_source, folder, sym_path.name)
    if params:
        truncated(params_source, folder, f"{prefix}-0000.params")
    return sym_path


# --- the cases: (argv after "export" minus --name/--out, words the error line must hold) ----

CASES: dict[str, tuple[str | None, Case]] = {
    "unknown framework": (None, lambda zoo, d: ([str(garbage(d, "model.onnx")), "--framework", "caffe"], "unknown framework 'caffe'")),
    "unknown file type": (None, lambda zoo, d: ([str(garbage(d, "model.h5"))], "cannot tell the framework of model.h5")),
    "missing file": (None, lambda zoo, d: ([str(d / "absent.keras")], "model file not found")),
    "keras corrupt": ("keras", lambda zoo, d: ([str(garbage(d, "corrupt.keras"))], "cannot load Keras model corrupt.keras")),
    "keras truncated": (
        "keras",
        lambda zoo, d: ([str(truncated(zoo("keras_mlp")[0], d))], "cannot load Keras model truncated-model.keras"),
    ),
    "keras sample shape": (
        "keras",
        lambda zoo, d: (
            [str(zoo("keras_mlp")[0]), "--sample", str(wrong_sample(d, (1, 7)))],
            "sample for input 'x' has shape [1, 7], the model expects [?, 8]",
        ),
    ),
    "keras free dims": ("keras", lambda zoo, d: ([str(keras_free_time_axis(d))], "input 'x' has free dimensions [?, ?, 3]: pass --sample")),
    "keras unsupported op": ("keras", lambda zoo, d: ([str(keras_erfinv(d))], "keras converter left unconverted: Erfinv")),
    "torch pt2 corrupt": ("torch", lambda zoo, d: ([str(garbage(d, "corrupt.pt2"))], "cannot load exported program corrupt.pt2")),
    "torch pt2 truncated": (
        "torch",
        lambda zoo, d: ([str(truncated(zoo("torch_mlp_pt2")[0], d))], "cannot load exported program truncated-mlp.pt2"),
    ),
    "torch pt2 sample shape": (
        "torch",
        lambda zoo, d: (
            [str(zoo("torch_mlp_pt2")[0]), "--sample", str(wrong_sample(d, (1, 7)))],
            "sample for input 'x' has shape [1, 7], the model expects [?, 8]",
        ),
    ),
    "torchscript corrupt": ("torch", lambda zoo, d: ([str(garbage(d, "corrupt.pt"))], "cannot load TorchScript model corrupt.pt")),
    "torchscript truncated": (
        "torch",
        lambda zoo, d: ([str(truncated(zoo("torch_conv1d_torchscript")[0], d))], "cannot load TorchScript model truncated-conv1d.pt"),
    ),
    "torchscript state_dict": ("torch", lambda zoo, d: ([str(torch_state_dict(d))], "must be written by torch.jit.save")),
    "torchscript no sample": (
        "torch",
        lambda zoo, d: ([str(zoo("torch_conv1d_torchscript")[0])], "records no input shapes: pass --sample"),
    ),
    "torchscript sample shape": (
        "torch",
        lambda zoo, d: (
            [str(zoo("torch_conv1d_torchscript")[0]), "--sample", str(wrong_sample(d, (1, 3, 16)))],
            "the model cannot run on the sample",
        ),
    ),
    "torch unsupported op": (
        "torch",
        lambda zoo, d: (
            [str(torch_erfinv(d)), "--sample", str(wrong_sample(d, (1, 4)))],
            "torch.onnx cannot convert the model: Exporting the operator 'aten::erfinv'",
        ),
    ),
    "sklearn corrupt": ("sklearn", lambda zoo, d: ([str(garbage(d, "corrupt.joblib"))], "cannot load scikit-learn model corrupt.joblib")),
    "sklearn truncated": (
        "sklearn",
        lambda zoo, d: (
            [str(truncated(zoo("sklearn_scaler_ridge")[0], d))],
            "cannot load scikit-learn model truncated-scaler_ridge.joblib",
        ),
    ),
    "sklearn not an estimator": (
        "sklearn",
        lambda zoo, d: ([str(sklearn_not_an_estimator(d))], "holds a dict, not a scikit-learn estimator"),
    ),
    "sklearn sample shape": (
        "sklearn",
        lambda zoo, d: (
            [str(zoo("sklearn_logistic")[0]), "--sample", str(wrong_sample(d, (1, 4)))],
            "sample for input 'input' has shape [1, 4], the model expects [?, 5]",
        ),
    ),
    "sklearn unsupported model": ("sklearn", lambda zoo, d: ([str(sklearn_kernel_ridge(d))], "skl2onnx cannot convert KernelRidge")),
    "mxnet truncated symbol": (
        "mxnet",
        lambda zoo, d: (
            [str(mxnet_pair(zoo, d, symbol=True, params=False)), "--sample", str(zoo("mxnet_dense")[1])],
            "cannot load MXNet symbol broken_10-symbol.json",
        ),
    ),
    "mxnet truncated params": (
        "mxnet",
        lambda zoo, d: (
            [str(mxnet_pair(zoo, d, symbol=False, params=True)), "--sample", str(zoo("mxnet_dense")[1])],
            "cannot load MXNet parameters broken_01-0000.params",
        ),
    ),
    "mxnet no params": ("mxnet", lambda zoo, d: ([str(garbage(d, "lonely-symbol.json"))], "no parameters for lonely-symbol.json")),
    "mxnet no sample": ("mxnet", lambda zoo, d: ([str(zoo("mxnet_dense")[0])], "records no input shapes: pass --sample")),
    "mxnet sample shape": (
        "mxnet",
        lambda zoo, d: ([str(zoo("mxnet_dense")[0]), "--sample", str(wrong_sample(d, (1, 7)))], "the model cannot run on the sample"),
    ),
    "mxnet unsupported op": (
        "mxnet",
        lambda zoo, d: (
            [str(mxnet_erfinv(d)), "--sample", str(wrong_sample(d, (1, 4)))],
            "No conversion function registered for op type erfinv",
        ),
    ),
}


def case_params():
    return [
        pytest.param(name, marks=[getattr(pytest.mark, framework)] if framework else [], id=name) for name, (framework, _) in CASES.items()
    ]


@pytest.mark.parametrize("case", case_params())
def test_bad_input_exits_2_with_one_line(case, zoo_model, tmp_path, capsys):
    framework, build = CASES[case]
    argv, expected = build(zoo_model, tmp_path)
    capsys.readouterr()
    code = cli(["export", *argv, *export_flags(framework), "--name", "bad", "--out", str(tmp_path / "registry")])
    captured = capsys.readouterr()
    progress = [line for line in captured.err.splitlines() if line.startswith("export: ")]
    problems = [line for line in captured.err.splitlines() if not line.startswith("export: ")]
    assert code == 2, captured.err
    assert len(problems) == 1, captured.err
    assert problems[0].startswith("edgecloud export: error: "), problems[0]
    assert expected in problems[0]
    assert "Traceback" not in captured.err + captured.out
    assert len(progress) <= 1
    assert not (tmp_path / "registry" / "bad").exists(), "nothing may be written for bad input"
