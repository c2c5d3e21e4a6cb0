"""What the service needs from an engine: run named arrays, get named arrays back."""

from __future__ import annotations

from typing import Mapping, Protocol

import numpy as np


class Engine(Protocol):
    name: str

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...
