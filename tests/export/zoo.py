"""A zoo of small, seeded models from the four frameworks, written to files as users would save them.

Helpers, not tests: the export tests and the browser tests import this module.

    from tests.export.zoo import ZOO, build

    entry = ZOO["keras_mlp"]                       # ZooEntry(framework, build, has_ml_ops)
    model_path, sample_path = entry.build(folder)  # writes the model file(s) + a sample .npy
    model_path, sample_path = build("keras_mlp", folder)  # the same, into folder/keras_mlp/

`framework` is the name `edgecloud export --framework` takes; `has_ml_ops` says the ONNX graph
holds `ai.onnx.ml` operators (ONNX.js runs the linear ones only once lowered). Every model is tiny and built without
training (seeded random weights), so building all of them takes seconds, not minutes; samples
are float32 with a batch of one. Framework imports happen inside each builder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

Builder = Callable[[Path], tuple[Path, Path]]


@dataclass(frozen=True)
class ZooEntry:
    framework: str
    build: Builder
    has_ml_ops: bool = False


def _sample(folder: Path, shape: tuple[int, ...], seed: int = 1) -> Path:
    path = folder / "sample.npy"
    np.save(path, np.random.default_rng(seed).standard_normal(shape).astype("float32"))
    return path


# --- Keras 3 -------------------------------------------------------------------------------


def _keras(folder: Path, make: Callable, input_shape: tuple[int, ...]) -> tuple[Path, Path]:
    import keras

    keras.utils.set_random_seed(7)
    inputs = keras.Input(input_shape, name="x")
    model = keras.Model(inputs, make(keras, inputs))
    path = folder / "model.keras"
    model.save(path)
    return path, _sample(folder, (1, *input_shape))


def keras_mlp(folder: Path) -> tuple[Path, Path]:
    return _keras(folder, lambda k, x: k.layers.Dense(3, name="y")(k.layers.Dense(16, activation="relu")(x)), (8,))


def keras_conv1d_forecaster(folder: Path) -> tuple[Path, Path]:
    def make(k, x):
        h = k.layers.Conv1D(4, 3, activation="relu")(x)
        h = k.layers.MaxPooling1D(2)(h)
        return k.layers.Dense(4, name="forecast")(k.layers.Flatten()(h))

    return _keras(folder, make, (16, 1))


def keras_lstm(folder: Path) -> tuple[Path, Path]:
    return _keras(folder, lambda k, x: k.layers.Dense(2, name="y")(k.layers.LSTM(6)(x)), (5, 3))


def keras_gru(folder: Path) -> tuple[Path, Path]:
    return _keras(folder, lambda k, x: k.layers.Dense(2, name="y")(k.layers.GRU(6)(x)), (5, 3))


def keras_batchnorm_dropout(folder: Path) -> tuple[Path, Path]:
    def make(k, x):
        h = k.layers.Dense(12)(x)
        h = k.layers.BatchNormalization(moving_mean_initializer="random_normal", moving_variance_initializer="ones")(h)
        h = k.layers.Dropout(0.5)(k.layers.Activation("relu")(h))
        return k.layers.Dense(3, name="y")(h)

    return _keras(folder, make, (8,))


def keras_conv2d_cnn(folder: Path) -> tuple[Path, Path]:
    def make(k, x):
        h = k.layers.Conv2D(4, 3, activation="relu")(x)
        h = k.layers.MaxPooling2D(2)(h)
        return k.layers.Dense(3, activation="softmax", name="y")(k.layers.Flatten()(h))

    return _keras(folder, make, (8, 8, 1))


def keras_residual(folder: Path) -> tuple[Path, Path]:
    def make(k, x):
        h = k.layers.Dense(8, activation="tanh")(x)
        return k.layers.Dense(2, name="y")(k.layers.Add()([x, h]))

    return _keras(folder, make, (8,))


def keras_softmax_axis1(folder: Path) -> tuple[Path, Path]:
    """Softmax over axis 1 of [batch, 4, 3]: ONNX.js gets this wrong silently at opset 13."""

    def make(k, x):
        return k.layers.Softmax(axis=1, name="y")(k.layers.Dense(3)(x))

    return _keras(folder, make, (4, 5))


# --- PyTorch -------------------------------------------------------------------------------


def _torch_modules():
    import torch
    from torch import nn

    class Mlp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers(x)

    class Conv1d(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(2, 4, 3)
            self.pool = nn.MaxPool1d(2)
            self.head = nn.Linear(4 * 7, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))

    class Lstm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 6, batch_first=True)
            self.head = nn.Linear(6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.lstm(x)
            return self.head(out[:, -1, :])

    return torch, Mlp, Conv1d, Lstm


def torch_mlp_pt2(folder: Path) -> tuple[Path, Path]:
    """An exported program (`torch.export`) with a free batch axis."""
    torch, Mlp, _, _ = _torch_modules()
    torch.manual_seed(7)
    batch = torch.export.Dim("batch")
    program = torch.export.export(Mlp().eval(), (torch.randn(2, 8),), dynamic_shapes={"x": {0: batch}})
    path = folder / "mlp.pt2"
    torch.export.save(program, path)
    return path, _sample(folder, (1, 8))


def torch_conv1d_torchscript(folder: Path) -> tuple[Path, Path]:
    torch, _, Conv1d, _ = _torch_modules()
    torch.manual_seed(7)
    path = folder / "conv1d.pt"
    torch.jit.save(torch.jit.script(Conv1d().eval()), path)
    return path, _sample(folder, (1, 2, 16))


def torch_lstm_torchscript(folder: Path) -> tuple[Path, Path]:
    torch, _, _, Lstm = _torch_modules()
    torch.manual_seed(7)
    path = folder / "lstm.pt"
    torch.jit.save(torch.jit.trace(Lstm().eval(), torch.randn(1, 5, 3)), path)
    return path, _sample(folder, (1, 5, 3))


# --- scikit-learn --------------------------------------------------------------------------


def _fit_data(features: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, features)).astype("float32")
    y = x @ rng.standard_normal(features) + 0.1 * rng.standard_normal(200)
    return x, y


def sklearn_scaler_ridge(folder: Path) -> tuple[Path, Path]:
    import joblib
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _fit_data()
    path = folder / "scaler_ridge.joblib"
    joblib.dump(make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x, y), path)
    return path, _sample(folder, (1, 5))


def sklearn_logistic(folder: Path) -> tuple[Path, Path]:
    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = _fit_data()
    labels = np.digitize(y, [-1.0, 1.0])  # three classes
    path = folder / "logistic.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(x, labels), path)
    return path, _sample(folder, (1, 5))


# --- MXNet Gluon ---------------------------------------------------------------------------


def _gluon(folder: Path, layers: Callable, shape: tuple[int, ...]) -> tuple[Path, Path]:
    from export.mxnet_compat import import_mxnet

    mx = import_mxnet()
    mx.random.seed(7)
    net = mx.gluon.nn.HybridSequential()
    net.add(*layers(mx.gluon.nn))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    net(mx.nd.zeros((1, *shape)))
    prefix = folder / "net"
    net.export(str(prefix), epoch=0)
    return folder / "net-symbol.json", _sample(folder, (1, *shape))


def mxnet_dense(folder: Path) -> tuple[Path, Path]:
    return _gluon(folder, lambda nn: [nn.Dense(16, activation="relu"), nn.Dense(3)], (8,))


def mxnet_conv2d(folder: Path) -> tuple[Path, Path]:
    return _gluon(folder, lambda nn: [nn.Conv2D(4, 3, activation="relu"), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(3)], (1, 8, 8))


ZOO: dict[str, ZooEntry] = {
    "keras_mlp": ZooEntry("keras", keras_mlp),
    "keras_conv1d_forecaster": ZooEntry("keras", keras_conv1d_forecaster),
    "keras_lstm": ZooEntry("keras", keras_lstm),
    "keras_gru": ZooEntry("keras", keras_gru),
    "keras_batchnorm_dropout": ZooEntry("keras", keras_batchnorm_dropout),
    "keras_conv2d_cnn": ZooEntry("keras", keras_conv2d_cnn),
    "keras_residual": ZooEntry("keras", keras_residual),
    "keras_softmax_axis1": ZooEntry("keras", keras_softmax_axis1),
    "torch_mlp_pt2": ZooEntry("torch", torch_mlp_pt2),
    "torch_conv1d_torchscript": ZooEntry("torch", torch_conv1d_torchscript),
    "torch_lstm_torchscript": ZooEntry("torch", torch_lstm_torchscript),
    "sklearn_scaler_ridge": ZooEntry("sklearn", sklearn_scaler_ridge, has_ml_ops=True),
    "sklearn_logistic": ZooEntry("sklearn", sklearn_logistic, has_ml_ops=True),
    "mxnet_dense": ZooEntry("mxnet", mxnet_dense),
    "mxnet_conv2d": ZooEntry("mxnet", mxnet_conv2d),
}


def export_flags(framework: str | None) -> list[str]:
    """Flags `edgecloud export` needs for a framework's files: scikit-learn's are unpickled, so they take --trust-pickle."""
    return ["--trust-pickle"] if framework == "sklearn" else []


def build(name: str, root: Path) -> tuple[Path, Path]:
    """Build zoo model `name` into `root/name/` (created); returns (model path, sample path)."""
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    return ZOO[name].build(folder)
