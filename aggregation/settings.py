"""One dataclass for the aggregator's settings, checked once (`check()` names the field at fault).

Filled by `edgecloud serve --federated ...` from its flags; a field's flag is its name with dashes
(max_body_bytes: --max-update-bytes), so the command line names its own flag from `setting`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .fedavg import METHODS

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
ROUND_MODES = ("synchronous", "buffered")
DEFAULT_MAX_STALENESS = 4  # buffered rounds: versions an update may lag behind when --max-staleness is not given
DEFAULT_STALENESS_EXPONENT = 0.5  # FedBuff's 1/sqrt(1 + s)


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
    rounds: str = "synchronous"  # or "buffered": FedBuff, a version every `buffer` updates (see service.py)
    buffer: int | None = None  # buffered: a round closes with this many accepted updates
    max_staleness: int | None = None  # buffered: oldest base taken, in versions behind (None: DEFAULT_MAX_STALENESS)
    staleness_exponent: float | None = None  # buffered: an update s versions old counts (1 + s) ** -a (None: 0.5)

    @property
    def buffered(self) -> bool:
        return self.rounds == "buffered"

    @property
    def close_at(self) -> int:
        """Accepted updates that close a round: the buffer K in buffered rounds, else min_clients."""
        return self.buffer if self.buffered and self.buffer is not None else self.min_clients

    @property
    def staleness_bound(self) -> int:
        """How many versions behind the current one an update's base may be (0 in synchronous rounds)."""
        if not self.buffered:
            return 0
        return DEFAULT_MAX_STALENESS if self.max_staleness is None else self.max_staleness

    def staleness_weight(self, staleness: int) -> float:
        """How much an update computed `staleness` versions ago counts: (1 + s) ** -a, 1 when fresh."""
        exponent = DEFAULT_STALENESS_EXPONENT if self.staleness_exponent is None else self.staleness_exponent
        return float((1 + staleness) ** -exponent)

    def check(self) -> "FederatedSettings":
        if self.min_clients < 1:
            raise SettingError("min_clients", f"must be at least 1, got {self.min_clients}")
        if self.round_deadline is not None and not (math.isfinite(self.round_deadline) and self.round_deadline > 0):
            raise SettingError("round_deadline", f"must be a positive number of seconds, got {self.round_deadline}")
        self._check_rounds()
        if not 1 <= self.deadline_min_clients <= self.close_at:
            closer = f"buffer ({self.buffer})" if self.buffered else f"min clients ({self.min_clients})"
            raise SettingError("deadline_min_clients", f"must be between 1 and {closer}, got {self.deadline_min_clients}")
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

    def _check_rounds(self) -> None:
        if self.rounds not in ROUND_MODES:
            raise SettingError("rounds", f"must be one of {', '.join(ROUND_MODES)}, got {self.rounds!r}")
        if not self.buffered:
            for setting in ("buffer", "max_staleness", "staleness_exponent"):
                if getattr(self, setting) is not None:
                    raise SettingError(setting, "applies to buffered rounds only: add --rounds buffered")
            return
        if self.buffer is None or self.buffer < 1:
            raise SettingError("buffer", f"must be at least 1 update with --rounds buffered, got {self.buffer}")
        if self.max_staleness is not None and self.max_staleness < 0:
            raise SettingError("max_staleness", f"must be a number of versions >= 0, got {self.max_staleness}")
        if self.staleness_exponent is not None and not (math.isfinite(self.staleness_exponent) and self.staleness_exponent >= 0):
            raise SettingError("staleness_exponent", f"must be >= 0 (0: stale updates count fully), got {self.staleness_exponent}")
