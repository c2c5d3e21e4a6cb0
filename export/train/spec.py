"""What the user asks of the training step (--trainable/--loss/--optimizer/...), checked up front.

Every value is validated before any slow conversion, so a typo costs one line, not a Keras load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadInputError
from .trainable import check_spec

LOSSES = ("mse", "cross-entropy", "bce")
OPTIMIZERS = ("sgd", "adam")
FLAVORS = ("keras", "torch")
DEFAULT_BATCH = 32
DEFAULT_OPTIMIZER = "adam"
DEFAULT_LEARNING_RATE = {"sgd": 0.01, "adam": 0.001}
# Each framework's own Adam defaults: the step follows the source framework's update rule.
ADAM_EPSILON = {"keras": 1e-7, "torch": 1e-8}
ADAM_BETAS = (0.9, 0.999)


@dataclass(frozen=True)
class TrainingOptions:
    """`trainable` None: head where the model ends in a Dense/Linear layer, else no step."""

    trainable: str | None = None
    loss: str | None = None  # None: inferred (softmax output → cross-entropy, else mse)
    optimizer: str = DEFAULT_OPTIMIZER
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATE[optimizer]
    batch_size: int = DEFAULT_BATCH

    def check(self) -> "TrainingOptions":
        check_spec(self.trainable)
        if self.loss is not None and self.loss not in LOSSES:
            raise BadInputError(f"--loss {self.loss!r}: choose one of {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            raise BadInputError(f"--optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.learning_rate is not None and not (
            isinstance(self.learning_rate, (int, float)) and math.isfinite(self.learning_rate) and self.learning_rate > 0
        ):
            raise BadInputError(f"--learning-rate {self.learning_rate!r}: must be a positive number")
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or not 1 <= self.batch_size <= 4096:
            raise BadInputError(f"--train-batch {self.batch_size!r}: must be a whole number from 1 to 4096")
        return self

    @property
    def enabled_explicitly(self) -> bool:
        return self.trainable not in (None, "none")


@dataclass(frozen=True)
class Loss:
    kind: str
    inferred: bool

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "inferred": self.inferred}


@dataclass(frozen=True)
class Optimizer:
    kind: str
    flavor: str
    learning_rate: float
    beta1: float = ADAM_BETAS[0]
    beta2: float = ADAM_BETAS[1]
    epsilon: float = field(default=1e-7)

    @classmethod
    def of(cls, options: TrainingOptions, flavor: str) -> "Optimizer":
        rate = float(options.learning_rate or DEFAULT_LEARNING_RATE[options.optimizer])
        return cls(options.optimizer, flavor, rate, epsilon=ADAM_EPSILON[flavor])

    @property
    def needs_step(self) -> bool:
        return self.kind == "adam"

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("m", "v") if self.kind == "adam" else ()

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"kind": self.kind, "flavor": self.flavor, "learning_rate": self.learning_rate}
        if self.kind == "adam":
            entry.update(beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon)
        return entry
