"""What the service needs from an engine: run named arrays, get named arrays back."""

from __future__ import annotations

from typing import Mapping, Protocol

import numpy as np


class EngineLoadError(Exception):
    """The engine cannot load this model; the message names the operator or file at fault.

    Raised while MMS loads the model, so registration fails with this message.
    """


class Engine(Protocol):
    name: str

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...
