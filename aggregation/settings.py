"""One dataclass for the aggregator's settings, checked once (`check()` names the field at fault).

Filled by `edgecloud serve --federated ...` from its flags; a field's flag is its name with dashes
(max_body_bytes: --max-update-bytes), so the command line names its own flag from `setting`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .fedavg import METHODS

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


class SettingError(ValueError):
    """One setting is out of range; `setting` is the field's name."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting.replace('_', ' ')} {problem}")
        self.setting, self.problem = setting, problem


@dataclass(frozen=True)
class FederatedSettings:
    """Round and validation rules of one aggregator (shared by every model it serves)."""

    min_clients: int = 3  # a round closes as soon as it holds this many updates
    round_deadline: float | None = None  # seconds after a round opens; then it closes with >= deadline_min_clients
    deadline_min_clients: int = 1
    aggregation: str = "fedavg"
    trim: float = 0.1  # fraction cut at each end by trimmed-mean
    clip: float | None = None  # updates above this L2 norm are scaled down to it (recorded); None: never
    max_norm: float = 1000.0  # updates above this L2 norm are refused (422), never averaged
    dp_noise: float = 0.0  # Gaussian noise multiplier z (needs clip); 0 = off, the result exact
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def check(self) -> "FederatedSettings":
        if self.min_clients < 1:
            raise SettingError("min_clients", f"must be at least 1, got {self.min_clients}")
        if self.round_deadline is not None and not (math.isfinite(self.round_deadline) and self.round_deadline > 0):
            raise SettingError("round_deadline", f"must be a positive number of seconds, got {self.round_deadline}")
        if not 1 <= self.deadline_min_clients <= self.min_clients:
            raise SettingError(
                "deadline_min_clients", f"must be between 1 and min clients ({self.min_clients}), got {self.deadline_min_clients}"
            )
        if self.aggregation not in METHODS:
            raise SettingError("aggregation", f"must be one of {', '.join(METHODS)}, got {self.aggregation!r}")
        if not 0.0 <= self.trim < 0.5:
            raise SettingError("trim", f"must be in [0, 0.5), got {self.trim}")
        if self.clip is not None and not (math.isfinite(self.clip) and self.clip > 0):
            raise SettingError("clip", f"must be a positive L2 norm, got {self.clip}")
        if not (math.isfinite(self.max_norm) and self.max_norm > 0):
            raise SettingError("max_norm", f"must be a positive L2 norm, got {self.max_norm}")
        if self.clip is not None and self.clip > self.max_norm:
            raise SettingError("clip", f"{self.clip} is above max norm {self.max_norm}: nothing would ever be clipped")
        if not (math.isfinite(self.dp_noise) and self.dp_noise >= 0):
            raise SettingError("dp_noise", f"must be a noise multiplier >= 0, got {self.dp_noise}")
        if self.dp_noise > 0 and self.clip is None:
            raise SettingError("dp_noise", "needs --clip: the noise is scaled to the clipping bound")
        if self.max_body_bytes < 1024:
            raise SettingError("max_body_bytes", f"must be at least 1024, got {self.max_body_bytes}")
        return self
