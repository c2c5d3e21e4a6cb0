"""`torch.export` programs saved at a static batch of 1, as a new user saves them by default
(`torch.export.export(model, (torch.randn(1, ...),))`): their module guards `x.size()[0] == 1`.

Shared by the export tests and the browser tests of issue 28's regression."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MLP_FEATURES, MLP_CLASSES = 6, 3
SERIES, CONV_CHANNELS, HIDDEN, OUTPUTS = 24, 4, 8, 2


def mlp_classifier():
    """Linear → ReLU → Linear → Softmax: its default step is the head with cross-entropy."""
    import torch

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = torch.nn.Linear(MLP_FEATURES, 16)
            self.head = torch.nn.Linear(16, MLP_CLASSES)

        def forward(self, x):
            return torch.softmax(self.head(torch.relu(self.hidden(x))), dim=-1)

    return Classifier


def conv_lstm_regressor():
    """Conv1d → ReLU → LSTM → last step → Linear: its default step is the head with mse."""
    import torch

    class Regressor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv1d(1, CONV_CHANNELS, 5, padding=2)
            self.lstm = torch.nn.LSTM(CONV_CHANNELS, HIDDEN, batch_first=True)
            self.head = torch.nn.Linear(HIDDEN, OUTPUTS)

        def forward(self, x):
            sequence, _ = self.lstm(torch.relu(self.conv(x)).transpose(1, 2))
            return self.head(sequence[:, -1])

    return Regressor


def save_program(kind: str, folder: Path, batch: int = 1) -> Path:
    """Save `kind` ("mlp" or "conv-lstm") exported at a static `batch`; returns the .pt2 path."""
    import torch

    torch.manual_seed(0)
    if kind == "mlp":
        module, sample = mlp_classifier()().eval(), torch.randn(batch, MLP_FEATURES)
    else:
        module, sample = conv_lstm_regressor()().eval(), torch.randn(batch, 1, SERIES)
    path = Path(folder) / f"{kind}-static{batch}.pt2"
    torch.export.save(torch.export.export(module, (sample,)), str(path))
    return path


def per_example_adam(kind: str, program_path: Path, x: np.ndarray, y: np.ndarray, *, batch: int, rate: float) -> dict[str, np.ndarray]:
    """torch.optim.Adam on the program's head, each batch's gradient summed over its examples / count."""
    import torch

    module = torch.export.load(str(program_path)).module()
    head = [module.get_parameter("head.weight"), module.get_parameter("head.bias")]
    optimizer = torch.optim.Adam(head, lr=rate)
    for start in range(0, len(x), batch):
        optimizer.zero_grad()
        rows = range(start, min(start + batch, len(x)))
        for row in rows:
            prediction = module(torch.from_numpy(x[row : row + 1]))
            if kind == "mlp":
                loss = -torch.log(prediction[0, int(y[row])])
            else:
                loss = torch.nn.functional.mse_loss(prediction, torch.from_numpy(y[row : row + 1]))
            (loss / len(rows)).backward()
        optimizer.step()
    return {f"program.head.{k}": p.detach().numpy() for k, p in zip(("weight", "bias"), head)}
