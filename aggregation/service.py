"""Round rules, with no HTTP: which update a round takes, when it closes, what closing does.

A round belongs to one model and one base version. An update is accepted when its base is the
round's, its tensors have the names, shapes and dtype of model.json `training` and are finite,
its L2 norm is within `max_norm` (then clipped to `clip`, recorded) and its client has none in
the round yet: a second is refused, so what a round holds only grows and a page that retries
after a lost answer learns that its first one counts. It is stored before `submit` returns.
The round stops taking updates when it holds `min_clients`, or at its deadline with at least
`deadline_min_clients`; the ticker (`tick`, about once a second, so no page's answer waits for a
new version to be built) then closes it: it aggregates, hands the parameters to the `Publisher` (which makes
and serves the next version: the caller's, since this package never touches ONNX files or MMS),
then closes the round and opens the next on the new version in one store transaction.

Buffered rounds (`rounds="buffered"`, FedBuff: Nguyen et al., "Federated Learning with Buffered
Asynchronous Aggregation", AISTATS 2022) are for pages that come and go: a round closes with
`buffer` K accepted updates, and it also takes an update computed on an older version, up to
`max_staleness` S versions behind the round's base (staleness s = round base − update base, in
version numbers); older ones are refused with 409 `stale-base` naming both versions. A delta is
always against its own base version and is added, as it is, to the round's base, i.e. the current
version (FedBuff's server step: the page never needs the versions in between); it counts
w(s) = (1 + s)^-a, a = 0.5 by default, the polynomial staleness function of FedAsync (Xie et al.,
"Asynchronous Federated Optimization", 2019) that FedBuff uses: it is 1 for a fresh update, decays
slowly enough that a page one version late still helps (0.71), and needs no tuning of a cut-off
(the hinge function does). The new version is base + Σ nᵢ·w(sᵢ)·Δᵢ / Σ nᵢ (fedavg.py); every
update's base, staleness and weight are stored with it. Synchronous rounds are the same with S = 0.

Several aggregator processes may share one store (replicas on PostgreSQL): the ticker of each
closes a round only under the store's claim on it (`RoundStore.claim_round`), so exactly one of
them closes it, and a process that did not close it follows the store's open round (`_sync`),
taking the new version's parameters from `loader` (the registry's newest version).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from . import fedavg
from .settings import FederatedSettings
from .store import DuplicateUpdate, Refusal, RoundClaim, RoundClosed, RoundRecord, RoundStore, StoredUpdate, StoreUnavailable

logger = logging.getLogger(__name__)
CLOSE_RETRY_SECONDS = 30.0  # a failed close (e.g. MMS refused the version) is tried again this much later


class Refused(Exception):
    """An update or request the aggregator does not take: HTTP status, stable code, one-line message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class FederatedModel:
    """A model version the aggregator averages into: its trainable parameters and their values."""

    name: str
    version: str
    parameters: tuple[ParameterSpec, ...]
    base: Mapping[str, np.ndarray]
    produced_by_round: int | None = None  # provenance `federated.round` of this version, if a round made it
    produced_from: int | None = None  # provenance `federated.clients`: how many updates that round's close averaged


@dataclass(frozen=True)
class Update:
    """A parsed update (http.py builds it): the delta per parameter name, as received."""

    client: str
    base_version: str
    samples: int
    delta: Mapping[str, np.ndarray]


class Publisher(Protocol):
    def publish(
        self, model: FederatedModel, parameters: dict[str, np.ndarray], provenance: dict[str, Any], held: Callable[[], bool]
    ) -> FederatedModel:
        """Make `parameters` the next version of `model`, serve it, move latest.json; return the new version.
        `held()` says whether this process still holds the round: asked last, before latest.json moves."""


@dataclass
class _State:
    model: FederatedModel
    round: RoundRecord
    closing: bool = False  # full or past its deadline: takes no more updates; the ticker is closing it
    busy: bool = False  # a close is running
    retry_at: float = 0.0  # after a failed close, when to try again
    last_error: str | None = None


class FederatedService:
    def __init__(
        self,
        store: RoundStore,
        settings: FederatedSettings,
        models: list[FederatedModel],
        publisher: Publisher,
        *,
        clock: Callable[[], float] = time.time,
        rng: np.random.Generator | None = None,
        loader: Callable[[str, str | None], FederatedModel] | None = None,
    ) -> None:
        """`loader(name, version)` reads a version, the current one for None (needed when other processes close rounds)."""
        self.store, self.settings, self.publisher, self.clock = store, settings.check(), publisher, clock
        self.loader = loader
        self.rng = rng or np.random.default_rng()
        self._lock = threading.Lock()
        self._states = {model.name: self._resume(model) for model in models}

    # -- start ------------------------------------------------------------------------
    def _resume(self, model: FederatedModel) -> _State:
        """The model's open round as stored (every accepted update kept), or its first one.

        If the served version was produced by the open round (the process stopped after publishing,
        before the close was committed), the close is recorded now; a version exported meanwhile by
        hand supersedes the round, whose updates were against an older base.
        """
        current = self.store.current_round(model.name)
        if current is None:
            try:
                return _State(model, self.store.open_round(model.name, model.version, self.clock()))
            except ValueError:  # another replica starting opened it first
                current = self.store.current_round(model.name)
                assert current is not None
        if current.base_version != model.version and self.loader is not None:
            model = self.loader(model.name, None)  # read again: `model` may predate a close another replica just made
        if (
            current.base_version != model.version
            and model.produced_by_round == current.id
            and self.loader is not None
            and model.produced_from not in (None, current.clients)
        ):
            # Published from fewer updates than the round holds now (its closer was killed before recording
            # the close; updates came in after): not the round's aggregate. The ticker closes it into the next version.
            logger.warning(
                "round %d of %s: version %s averaged %s of its %d updates; it closes again",
                current.id,
                model.name,
                model.version,
                model.produced_from,
                current.clients,
            )
            return _State(self.loader(model.name, current.base_version), current)
        if current.base_version != model.version:
            outcome = "published" if model.produced_by_round == current.id else "superseded"
            logger.warning(
                "round %d of %s (base %s) closed as %s by version %s", current.id, model.name, current.base_version, outcome, model.version
            )
            current = self.store.close_round(current.id, model.version, {"outcome": outcome}, self.clock())
        return _State(model, current)

    # -- reading ------------------------------------------------------------------------
    def _state(self, name: str) -> _State:
        state = self._states.get(name)
        if state is None:
            raise Refused(
                404, "unknown-model", f"model {name!r} takes no federated updates here; known: {', '.join(self._states) or 'none'}"
            )
        return state

    def models(self) -> list[str]:
        return list(self._states)

    def describe(self, name: str) -> dict[str, Any]:
        """What a page needs before sending: the round, its base, the parameters and the limits."""
        state = self._state(name)
        current = self.store.current_round(name) or state.round
        return {
            "model": name,
            "round": current.id,
            "base_version": current.base_version,
            "closing": state.closing,
            "accepted": current.clients,
            "samples": current.samples,
            "min_clients": self.settings.close_at,
            "rounds": self.settings.rounds,
            "oldest_base_version": self._oldest_base(current.base_version),
            "deadline": current.opened_at + self.settings.round_deadline if self.settings.round_deadline else None,
            "parameters": [{"name": p.name, "shape": list(p.shape), "dtype": p.dtype} for p in state.model.parameters],
            "max_norm": self.settings.max_norm,
            "clip": self.settings.clip,
            "max_body_bytes": self.settings.max_body_bytes,
            "last_error": state.last_error,
        }

    # -- updates ------------------------------------------------------------------------
    def submit(self, name: str, update: Update) -> dict[str, Any]:
        """Accept and store `update` or raise Refused (recorded with its reason); may start the close."""
        state = self._state(name)
        try:
            accepted = self._accept(state, update)
        except Refused as refused:
            self.store.record_refusal(
                Refusal(name, state.round.id, update.client, refused.status, f"{refused.code}: {refused.message}", self.clock())
            )
            raise
        return accepted

    def _sync(self, state: _State) -> None:
        """Follow a round another process closed: the store's open round and, once `loader` finds
        that round's base version, its parameters. Nothing changes while this process closes one."""
        current = self.store.current_round(state.model.name)
        if current is None or current.id == state.round.id or state.busy:
            return
        model = state.model
        if current.base_version != model.version:
            if self.loader is None or (model := self.loader(model.name, None)).version != current.base_version:
                return  # the version is not readable yet: keep refusing with the old base
        with self._lock:
            if not state.busy:
                state.model, state.round, state.closing, state.last_error = model, current, False, None

    def _accept(self, state: _State, update: Update) -> dict[str, Any]:
        self._sync(state)
        with self._lock:
            current, closing = state.round, state.closing
        # While a round closes, its next version is published before the next round opens: an update on
        # that version is early, not unknown (a page that saw latest.json move may send at once).
        if closing or self._published_early(state, current, update.base_version):
            raise Refused(409, "round-closing", f"round {current.id} is closing; its next version takes updates soon")
        staleness = self._staleness(current, update.base_version)
        delta = self._checked_delta(state.model, update.delta)
        if update.samples < 1:
            raise Refused(422, "bad-samples", f"samples must be a positive number of examples, got {update.samples}")
        clipped, norm, was_clipped = fedavg.clip(delta, self.settings.clip)
        if norm > self.settings.max_norm:
            raise Refused(422, "norm-too-large", f"update L2 norm {norm:.6g} is above the bound {self.settings.max_norm:g}")
        stored = StoredUpdate(
            client=update.client,
            samples=int(update.samples),
            delta={k: np.asarray(v, np.float32) for k, v in clipped.items()},
            norm=norm,
            clipped=was_clipped,
            received_at=self.clock(),
            base_version=update.base_version,
            staleness=staleness,
            weight=self.settings.staleness_weight(staleness),
        )
        with self._lock:
            if state.closing or state.round.id != current.id:
                raise Refused(409, "round-closing", f"round {current.id} closed while this update arrived; send it for the new base")
            try:
                self.store.add_update(current.id, stored)
            except RoundClosed:
                raise Refused(
                    409, "round-closing", f"round {current.id} is closing or closed; send the update for its next version"
                ) from None
            except DuplicateUpdate:
                raise Refused(
                    409,
                    "duplicate-client",
                    f"client {update.client!r} already has an update in round {current.id}; the first one counts, one per client per round",
                ) from None
            state.closing = self._due(state)
        return {
            "accepted": True,
            "round": current.id,
            "base_version": current.base_version,
            "norm": norm,
            "clipped": was_clipped,
            "staleness": staleness,
            "weight": stored.weight,
        }

    def _published_early(self, state: _State, current: RoundRecord, base_version: str) -> bool:
        """True when `base_version` is the one after the round's and already readable: another process
        is closing the round (it publishes, then records the close)."""
        if self.loader is None or not (base_version.isdigit() and current.base_version.isdigit()):
            return False
        if int(base_version) != int(current.base_version) + 1:
            return False
        try:
            return self.loader(state.model.name, base_version).version == base_version
        except Exception:  # noqa: BLE001 - no such version (yet): the update's base is unknown
            return False

    def _oldest_base(self, base_version: str) -> str:
        """The oldest version an update may be computed on while `base_version` is the round's base."""
        bound = self.settings.staleness_bound
        return str(max(1, int(base_version) - bound)) if bound and base_version.isdigit() else base_version

    def _staleness(self, current: RoundRecord, base_version: str) -> int:
        """Versions between the update's base and the round's; Refused (409) outside [0, bound]."""
        if base_version == current.base_version:
            return 0
        bound = self.settings.staleness_bound
        advice = f"personalise version {current.base_version} and send again"
        if not bound:
            raise Refused(
                409, "stale-base", f"base version {base_version!r} is not round {current.id}'s base {current.base_version!r}: {advice}"
            )
        if not (base_version.isdigit() and current.base_version.isdigit()) or int(base_version) > int(current.base_version):
            raise Refused(
                409,
                "unknown-base",
                f"base version {base_version!r} is not a version this aggregator has served "
                f"(the current one is {current.base_version}): {advice}",
            )
        staleness = int(current.base_version) - int(base_version)
        if staleness > bound:
            raise Refused(
                409,
                "stale-base",
                f"base version {base_version} is {staleness} versions behind the current "
                f"{current.base_version}; updates on versions {self._oldest_base(current.base_version)} to "
                f"{current.base_version} are taken (--max-staleness {bound}): {advice}",
            )
        return staleness

    @staticmethod
    def _checked_delta(model: FederatedModel, delta: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        expected = {p.name: p for p in model.parameters}
        unknown = sorted(set(delta) - set(expected))
        if unknown:
            raise Refused(
                422,
                "unknown-parameter",
                f"parameter {unknown[0]!r} is not trainable in {model.name} v{model.version}; expected {', '.join(expected)}",
            )
        missing = [name for name in expected if name not in delta]
        if missing:
            raise Refused(422, "missing-parameter", f"parameter {missing[0]!r} is missing from the update")
        checked = {}
        for name, spec in expected.items():
            value = np.asarray(delta[name])
            if tuple(value.shape) != spec.shape:
                raise Refused(422, "wrong-shape", f"parameter {name!r} has shape {list(value.shape)}, expected {list(spec.shape)}")
            if not np.all(np.isfinite(value)):
                raise Refused(422, "not-finite", f"parameter {name!r} holds NaN or infinite values")
            checked[name] = value.astype(spec.dtype)
        return checked

    # -- closing --------------------------------------------------------------------------
    def tick(self) -> None:
        """Close every round whose deadline has passed with enough updates (called about once a second)."""
        for name in list(self._states):
            self._close_if_due(name)

    def _due(self, state: _State) -> bool:
        current = self.store.current_round(state.model.name)
        if current is None:
            return False
        if current.clients >= self.settings.close_at:
            return True
        deadline = self.settings.round_deadline
        return (
            deadline is not None and self.clock() >= current.opened_at + deadline and current.clients >= self.settings.deadline_min_clients
        )

    def _close_if_due(self, name: str) -> None:
        state = self._states[name]
        try:
            self._sync(state)
        except StoreUnavailable as error:
            state.last_error = str(error)
            return
        with self._lock:
            if state.busy or self.clock() < state.retry_at or not (state.closing or self._due(state)):
                return
            state.closing = state.busy = True
        try:
            self._close(state)
        except StoreUnavailable as error:  # the round stays open with every update; the next tick tries again
            logger.warning("closing round %d of %s: %s", state.round.id, name, error)
            state.last_error = str(error)
        finally:
            with self._lock:
                state.closing = state.busy = False

    def _close(self, state: _State) -> None:
        current = state.round
        with self.store.claim_round(current.id) as claim:
            if claim is None:
                return  # closed already, or another process is closing it: `_sync` follows it
            closed = self._close_claimed(state, claim)
        if closed is not None:
            with self._lock:
                state.model, state.round = closed
                state.last_error = None
            logger.info("round %d of %s closed: version %s", current.id, state.model.name, state.model.version)

    def _close_claimed(self, state: _State, claim: RoundClaim) -> tuple[FederatedModel, RoundRecord] | None:
        """Aggregate and publish the claimed round, then close it in the claim; None if that failed."""
        current = state.round
        updates = self.store.updates(current.id)
        contributions = [fedavg.Contribution(u.delta, u.samples, u.weight) for u in updates]
        settings = self.settings
        provenance = {
            "round": current.id,
            "base_version": current.base_version,
            "clients": len(updates),
            "samples": sum(u.samples for u in updates),
            "aggregation": settings.aggregation if settings.aggregation != "trimmed-mean" else f"trimmed-mean({settings.trim:g})",
            "clip": {"bound": settings.clip, "clipped": sum(u.clipped for u in updates), "max_norm": settings.max_norm},
            "dp": {"noise_multiplier": settings.dp_noise, "sigma": fedavg.noise_scale(contributions, settings.clip, settings.dp_noise)}
            if settings.dp_noise
            else None,
        }
        if settings.buffered:
            provenance["buffered"] = {
                "buffer": settings.buffer,
                "max_staleness": settings.staleness_bound,
                "staleness": [u.staleness for u in updates],
                "weights": [u.weight for u in updates],
            }
        try:
            parameters = fedavg.aggregate(
                state.model.base,
                contributions,
                method=settings.aggregation,
                trim=settings.trim,
                dp_noise=settings.dp_noise,
                clip_bound=settings.clip,
                rng=self.rng,
            )
            produced = self.publisher.publish(state.model, parameters, provenance, claim.held)
        except Exception as error:  # noqa: BLE001 - the round stays open with every update; status shows why
            logger.exception("closing round %d of %s failed", current.id, state.model.name)
            state.last_error = f"closing round {current.id} failed: {type(error).__name__}: {error}"
            state.retry_at = self.clock() + CLOSE_RETRY_SECONDS
            return None
        following = claim.close(produced.version, {"outcome": "published", **provenance}, self.clock())
        return produced, following


def run_ticker(service: FederatedService, stop: threading.Event, every: float = 1.0) -> threading.Thread:
    """A daemon thread calling `service.tick()` until `stop` is set (deadlines)."""

    def loop() -> None:
        while not stop.wait(every):
            try:
                service.tick()
            except Exception:  # noqa: BLE001 - a failed tick is logged; the next one tries again
                logger.exception("federated tick failed")

    thread = threading.Thread(target=loop, name="federated-ticker", daemon=True)
    thread.start()
    return thread


__all__ = ["FederatedModel", "FederatedService", "ParameterSpec", "Publisher", "Refused", "Update", "run_ticker"]
