"""Liveness and readiness of one replica, as the balancer and Kubernetes need them.

Liveness: the MMS process runs (the front door answering at all is the other half). Readiness:
every model the replica was asked to serve is registered and has a READY worker, its Python
backend process is alive (a dead one leaves MMS retrying a dead socket while /ping says
Healthy), and the replica is not draining. Kept pure, so each rule is tested without MMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class Health:
    ok: bool
    reasons: tuple[str, ...] = ()


def ready_workers(description: Any) -> int:
    """READY workers in MMS's `GET /models/NAME` answer (a list with one entry per version)."""
    entries = description if isinstance(description, list) else [description]
    return sum(
        1
        for entry in entries
        if isinstance(entry, dict)
        for worker in entry.get("workers") or []
        if isinstance(worker, dict) and worker.get("status") == "READY"
    )


def model_health(name: str, description: Any, backend_alive: bool) -> Health:
    """One model: registered, at least one READY worker, backend process alive."""
    if not description or (isinstance(description, dict) and "code" in description):
        return Health(False, (f"model {name} is not registered (yet)",))
    if ready_workers(description) == 0:
        return Health(False, (f"model {name} has no READY worker (loading or restarting)",))
    if not backend_alive:
        return Health(False, (f"model {name}: its backend process is dead",))
    return Health(True)


def readiness(
    expected: Iterable[str],
    descriptions: Mapping[str, Any],
    live_backends: Iterable[str],
    *,
    mms_running: bool,
    loading: bool,
    draining: bool,
) -> Health:
    """The replica's readiness: every reason it is not ready, or ok."""
    reasons: list[str] = []
    if not mms_running:
        reasons.append("Multi Model Server is not running")
    if loading:
        reasons.append("models are being loaded")
    if draining:
        reasons.append("draining: finishing the requests in flight before stopping")
    alive = set(live_backends)
    for name in expected:
        reasons += model_health(name, descriptions.get(name), name in alive).reasons
    return Health(not reasons, tuple(reasons))
