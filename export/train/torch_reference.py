"""PyTorch's own training step for parity: `torch.optim` on the module in eval mode.

Only the chosen parameters require gradients and are given to the optimizer; the module's
state and `requires_grad` flags are restored afterwards (it is also the inference reference).
Cross-entropy uses `F.cross_entropy` with probability targets (the one-hot rows the step
takes) on logits, and log-probabilities when the module ends in a softmax.

A program that cannot run at the step's batch (a `torch.export` program exported at batch 1 guards
`x.size()[0] == 1`; a TorchScript trace may hold the traced batch in a reshape) is run one example
at a time: every loss here is a mean over rows of equal size, so the batch's gradient is the mean
of the per-example gradients, accumulated before the one `optimizer.step()` of the batch. Adam's
state therefore sees exactly one gradient per batch, as with a batched forward (only the order of
the float32 sums differs).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..conversion import flat_outputs
from .reference import Batch, Normalisation, Variable
from .spec import Loss, Optimizer


class TorchTrainer:
    def __init__(self, module: Any, input_names: Sequence[str], output_names: Sequence[str]) -> None:
        self.module = module
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.per_example = False  # set once the module refused a whole batch

    def describe(self, optimizer: Optimizer) -> str:
        import torch

        name = {"sgd": "SGD", "adam": "Adam"}[optimizer.kind]
        how = ", one example at a time, gradients averaged" if self.per_example else ""
        return f"torch {torch.__version__} torch.optim.{name} (eval mode{how})"

    def normalisations(self) -> list[Normalisation]:
        """None to unfold: torch's exporters keep BatchNormalization nodes (batch_norm.py)."""
        return []

    def variables(self) -> list[Variable]:
        return [
            Variable(name, name.rsplit(".", 1)[0] if "." in name else "", p.detach().cpu().numpy().copy())
            for name, p in self.module.named_parameters()
        ]

    @staticmethod
    def _loss(loss: Loss, from_logits: bool, prediction: Any, target: Any) -> Any:
        import torch
        from torch.nn import functional as F

        if loss.kind == "mse":
            return F.mse_loss(prediction, target)
        if loss.kind == "cross-entropy":
            if from_logits:
                flat = prediction.reshape(-1, prediction.shape[-1])
                return F.cross_entropy(flat, target.reshape(flat.shape))
            return -(target * torch.log(prediction)).sum(dim=-1).mean()
        if from_logits:
            return F.binary_cross_entropy_with_logits(prediction, target)
        return F.binary_cross_entropy(prediction, target)

    def _total(self, loss: Loss, from_logits: bool, inputs: dict, targets: dict, rows: slice) -> Any:
        import torch

        arguments = [torch.from_numpy(np.ascontiguousarray(inputs[name][rows])) for name in self.input_names]
        results = flat_outputs(self.module(*arguments))
        return sum(
            self._loss(loss, from_logits, value, torch.from_numpy(np.ascontiguousarray(targets[name][rows])))
            for name, value in zip(self.output_names, results)
            if name in targets
        )

    def _backward(self, loss: Loss, from_logits: bool, inputs: dict, targets: dict) -> None:
        """Gradients of the batch's mean loss, batched when the module takes the batch, else per example."""
        count = len(next(iter(inputs.values())))
        if not self.per_example:
            try:
                self._total(loss, from_logits, inputs, targets, slice(None)).backward()
                return
            except Exception:  # noqa: BLE001 - a fixed-batch program: tried per example below, re-raised there
                if count == 1:
                    raise
                self.per_example = True
        for row in range(count):
            (self._total(loss, from_logits, inputs, targets, slice(row, row + 1)) / count).backward()

    def train(
        self, keys: list[str], loss: Loss, optimizer: Optimizer, from_logits: bool, batches: list[Batch]
    ) -> list[dict[str, np.ndarray]]:
        import torch

        parameters = dict(self.module.named_parameters())
        chosen = [parameters[key] for key in keys]
        saved = {name: p.detach().clone() for name, p in parameters.items()}
        flags = {name: p.requires_grad for name, p in parameters.items()}
        for name, p in parameters.items():
            p.requires_grad_(name in keys)
        if optimizer.kind == "sgd":
            torch_optimizer = torch.optim.SGD(chosen, lr=optimizer.learning_rate)
        else:
            torch_optimizer = torch.optim.Adam(
                chosen, lr=optimizer.learning_rate, betas=(optimizer.beta1, optimizer.beta2), eps=optimizer.epsilon
            )
        self.module.eval()
        history = []
        try:
            for inputs, targets in batches:
                torch_optimizer.zero_grad()
                self._backward(loss, from_logits, inputs, targets)
                torch_optimizer.step()
                history.append({key: p.detach().cpu().numpy().copy() for key, p in zip(keys, chosen)})
        finally:
            with torch.no_grad():
                for name, p in parameters.items():
                    p.copy_(saved[name])
                    p.requires_grad_(flags[name])
        return history
