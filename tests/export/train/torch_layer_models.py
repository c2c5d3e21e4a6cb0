"""PyTorch models with layers beyond Dense for issue 28's step tests (built per test, seeded)."""

from __future__ import annotations

SERIES, CHANNELS, HIDDEN = 16, 3, 5
VOCAB, TOKENS, WIDTH, CLASSES = 50, 6, 16, 3


def conv_gru_regressor():
    """Conv1d (padding, dilation) → ReLU → GRU → last step → Linear."""
    import torch

    class Regressor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv1d(1, CHANNELS, 3, padding=2, dilation=2)
            self.gru = torch.nn.GRU(CHANNELS, HIDDEN, batch_first=True)
            self.head = torch.nn.Linear(HIDDEN, 2)

        def forward(self, x):
            sequence, _ = self.gru(torch.relu(self.conv(x)).transpose(1, 2))
            return self.head(sequence[:, -1])

    torch.manual_seed(1)
    return Regressor().eval()


def text_classifier():
    """Embedding → LayerNorm → one self-attention head (softmax of QKᵀ/√d, V) → mean over tokens → Linear
    (logits). The key projection has no bias: a key bias adds the same q·b to every score of a row,
    which the softmax cancels, so its gradient is float32 noise that Adam would amplify to ±lr."""
    import torch

    class TextClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = torch.nn.Embedding(VOCAB, WIDTH)
            self.norm = torch.nn.LayerNorm(WIDTH)
            self.query = torch.nn.Linear(WIDTH, WIDTH)
            self.key = torch.nn.Linear(WIDTH, WIDTH, bias=False)
            self.value = torch.nn.Linear(WIDTH, WIDTH)
            self.head = torch.nn.Linear(WIDTH, CLASSES)

        def forward(self, ids):
            x = self.norm(self.embedding(ids))
            scores = torch.softmax(self.query(x) @ self.key(x).transpose(1, 2) / WIDTH**0.5, dim=-1)
            return self.head((scores @ self.value(x)).mean(dim=1))

    torch.manual_seed(2)
    return TextClassifier().eval()


def batchnorm_mlp():
    """Linear → BatchNorm1d (running statistics set) → ReLU → Linear: the exporter keeps the
    BatchNormalization node (it fuses BN into a preceding Conv only)."""
    import torch

    torch.manual_seed(3)
    module = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    with torch.no_grad():
        module[1].running_mean.uniform_(-0.2, 0.2)
        module[1].running_var.uniform_(0.5, 1.5)
        module[1].weight.uniform_(0.5, 1.5)
        module[1].bias.uniform_(-0.1, 0.1)
    return module.eval()


def bidirectional_regressor(cell: str, layers: int):
    """A bidirectional GRU/LSTM (`layers` stacked) → mean over time → Linear (every parameter gets a gradient)."""
    import torch

    class Regressor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            recurrent = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
            self.rnn = recurrent(CHANNELS, HIDDEN, num_layers=layers, batch_first=True, bidirectional=True)
            self.head = torch.nn.Linear(2 * HIDDEN, 2)

        def forward(self, x):
            sequence, _ = self.rnn(x)
            return self.head(sequence.mean(dim=1))

    torch.manual_seed(4)
    return Regressor().eval()
