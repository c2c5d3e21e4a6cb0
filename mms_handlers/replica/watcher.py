"""Serve a registry's versions: register each new one in MMS, route the model's name to it, retire old ones.

MMS 1.1.11 has no versions (one name, one archive; unregister + register leaves a 404 gap), so
each version runs as its own MMS model, `NAME-vN` (`names.version_name`), and the front door
routes the name. The watcher polls the registry (a folder: a volume in Kubernetes) every
`interval` seconds; polling, not inotify, because it works on every volume kind (NFS and
overlay mounts miss inotify events) and a version switch waits on worker start-up anyway.

A version `latest.json` names is served only after `Registry.check` passed (every file's size and
SHA-256 against model.json), its archive registered and a READY worker with a live backend
answers for it; only then does one assignment swap the catalog, so no request meets a gap.
A version whose own files or model fail (its check, its archive, the handler's load error) is
logged in one line and never tried again (versions never repeat); the one served keeps answering.
A failure on MMS's side (a timeout, a busy or restarting server) is logged once and tried again
after 2 s, then twice as long each time up to a minute; until a model has a version answering,
the replica is not ready (`unserved`), so a replica that met a passing failure at start is never
routed to without its models. Versions beyond the newest `keep` are unregistered
(never the one routed to) once no request sent to them is still in flight, since MMS drops
queued requests of an unregistered model unanswered.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from registry import Registry, RegistryError

from ..archive import ArchiveError, build_archive
from ..names import version_name
from ..server import MmsServer, ModelLoadError, ServerError
from .health import model_health
from .oip import Catalog, ModelInfo, model_info

# A switched-from version may still receive a request that read the old routing just before the
# switch: wait this long before counting its requests in flight.
SWITCH_GRACE_S = 1.0
READY_TIMEOUT_S = 120.0
IN_FLIGHT_TIMEOUT_S = 60.0
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 60.0


@dataclass(frozen=True)
class Retry:
    """A version that failed for a reason outside it, and when it is tried again."""

    reason: str
    wait_s: float
    at: float  # time.monotonic()


class Served(Protocol):
    """What the watcher changes and asks of the replica (runner.Replica)."""

    catalog: Catalog

    def in_flight_to(self, mms_name: str) -> int: ...


def log_line(message: str) -> None:
    print(f"replica: {message}", file=sys.stderr, flush=True)


class VersionWatcher:
    def __init__(
        self,
        registry: Registry,
        mms: MmsServer,
        served: Served,
        *,
        names: list[str] | None = None,
        keep: int = 2,
        interval: float = 0.5,
        log: Callable[[str], None] = log_line,
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep versions must be at least 1, got {keep}")
        self.registry, self.mms, self.served = registry, mms, served
        self.names, self.keep, self.interval, self.log = names, keep, interval, log
        self.refused: dict[tuple[str, int], str] = {}  # (model, version) → why it is never served
        self.retries: dict[tuple[str, int], Retry] = {}  # (model, version) → why it is not served yet
        self._logged: dict[tuple[str, int], str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="version-watcher", daemon=True)

    @property
    def store(self) -> Path:
        return Path(self.mms.config.model_store)

    def start(self) -> VersionWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(READY_TIMEOUT_S)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as error:  # noqa: BLE001 - the watcher must outlive one bad look; what is served stays
                self._log_once(("", -1), f"watching {self.registry.root} failed: {type(error).__name__}: {error}")

    def poll(self) -> None:
        """One look at every watched model: serve the version latest.json names, retire the old ones."""
        try:
            names = self.names if self.names is not None else self.registry.models()
        except OSError as error:
            self.log(f"registry {self.registry.root} unreadable: {error}")
            return
        for name in names:
            if self._stop.is_set():
                return
            try:
                self._follow(name)
            except (RegistryError, OSError) as error:
                self._log_once((name, -1), f"{name}: {error}")

    def _follow(self, name: str) -> None:
        target = self._target(name)
        for key in [key for key in self.retries if key[0] == name and key[1] != target]:
            del self.retries[key]  # latest.json moved on
        key = (name, target)
        if target is None or key in self.refused:
            return
        catalog = self.served.catalog
        current = catalog.models.get(name)
        if current is not None and current.version == str(target):
            return
        if catalog.version(name, str(target)) is None:
            retry = self.retries.get(key)
            if retry is not None and time.monotonic() < retry.at:
                return
            try:
                info = self._load(name, target)
            except (RegistryError, ArchiveError, ModelLoadError) as error:
                self.refused[key] = message = f"{name} version {target} not served: {error}"
                self._log_once(key, message)
                return
            except (ServerError, OSError) as error:
                wait = min(RETRY_MAX_S, retry.wait_s * 2) if retry is not None else RETRY_FIRST_S
                self.retries[key] = Retry(f"{name} version {target} not served yet: {error}", wait, time.monotonic() + wait)
                self._log_once(key, f"{self.retries[key].reason} (trying again, up to every {RETRY_MAX_S:.0f} s)")
                return
            self.retries.pop(key, None)
            self.served.catalog = self.served.catalog.with_version(info)
        self.served.catalog = self.served.catalog.routed(name, str(target))
        was = f"from version {current.version}" if current is not None else "first version"
        self.log(f"{name} now answers with version {target} ({was})")
        self._retire(name)

    def _target(self, name: str) -> int | None:
        """The version latest.json names; without a latest.json, the newest complete version."""
        latest = self.registry.latest(name)
        if latest is not None:
            return latest
        versions = self.registry.versions(name)
        return versions[-1] if versions else None

    def _load(self, name: str, version: int) -> ModelInfo:
        """Check, archive, register (with the model's own workers and batching) and wait for a READY
        worker; nothing stays registered on failure. The watcher is the one registrant of versions:
        publishers (export, the federated aggregator) only write the registry."""
        manifest = self.registry.check(name, version)
        mms_name = version_name(name, version)
        mar = build_archive(self.registry.version_dir(name, version), self.store, name=mms_name)
        workers, batch_size, delay = self.mms.config.options_for(name)
        if any(model.get("modelName") == mms_name for model in self.mms.models()):
            self.mms.unregister(mms_name)  # left by an attempt whose clean-up failed too
        try:
            self.mms.register(mar.name, initial_workers=workers, batch_size=batch_size, max_batch_delay_ms=delay)
            self._wait_until_ready(mms_name)
        except BaseException:
            self.mms.unregister(mms_name)
            mar.unlink(missing_ok=True)
            raise
        return model_info(manifest, mms_name)

    def _wait_until_ready(self, mms_name: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            health = model_health(mms_name, self.mms.describe(mms_name), mms_name in self.mms.backend_pids())
            if health.ok:
                return
            if time.monotonic() > deadline:
                raise ServerError(f"{mms_name} not ready after {READY_TIMEOUT_S:.0f} s: {'; '.join(health.reasons)}")
            time.sleep(0.1)

    def _retire(self, name: str) -> None:
        """Unregister the versions beyond the newest `keep`, never the one routed to: out of the catalog
        first (pinned requests get the front door's 404), then out of MMS once nothing sent there is pending."""
        catalog = self.served.catalog
        routed = catalog.models[name].version
        retired = [info for v in catalog.kept(name)[: -self.keep] if v != routed and (info := catalog.version(name, v))]
        if not retired:
            return
        for info in retired:
            self.served.catalog = self.served.catalog.without(name, info.version)
        self._stop.wait(SWITCH_GRACE_S)
        for info in retired:
            deadline = time.monotonic() + IN_FLIGHT_TIMEOUT_S
            while self.served.in_flight_to(info.mms_name) > 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            try:
                self.mms.unregister(info.mms_name)
            except ServerError as error:
                self.log(f"{name} version {info.version}: {error}")
            (self.store / f"{info.mms_name}.mar").unlink(missing_ok=True)
            self.log(f"{name} version {info.version} retired (keeping {self.keep})")

    def unserved(self) -> list[str]:
        """Why each model with no version answering is waiting for one to be tried again (readiness)."""
        models = self.served.catalog.models
        return [retry.reason for (name, _), retry in list(self.retries.items()) if name not in models]

    def _log_once(self, key: tuple[str, int], message: str) -> None:
        """Log why `key` is not served, once per reason (every poll meets it again)."""
        if self._logged.get(key) != message:
            self._logged[key] = message
            self.log(message)
