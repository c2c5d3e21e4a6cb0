"""Run one replica in the foreground: MMS, its models, the front door; drain and stop on SIGTERM.

`python -m mms_handlers.replica` is the container's command (under tini, which passes SIGTERM
on) and what `edgecloud serve --replicas N` starts N times. Order at start: MMS, then the front
door (live at once, not ready while the models load), then registration. On SIGTERM: readiness
fails at once, requests keep being answered for `drain_seconds` (the balancer's or Kubernetes'
time to stop sending), then the port closes once the requests in flight are answered, then MMS
stops. Settings come from flags or `EDGECLOUD_*` environment variables (manifests set those).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Sequence

from registry import Registry

from ..server import MmsServer, ServerConfig, ServerError, SettingError
from ..settings import FIELDS, ServingSettings, flag_of
from .frontdoor import FrontDoor
from .health import Health, model_health, readiness
from .metrics import ReplicaMetrics
from .oip import Catalog
from .watcher import VersionWatcher

# Readiness is looked up in the background this often, so a probe is answered at once from the last
# look even when the machine is busy (a slow answer makes the balancer drop a healthy replica).
READINESS_INTERVAL_S = 0.25
# In the runtime folder: MMS's process group, so whoever started a replica that was killed outright
# (SIGKILL leaves no time to stop MMS) can stop what it left behind.
MMS_GROUP_FILE = "mms.pgid"


@dataclass
class ReplicaSettings:
    server: ServerConfig
    port: int = 8080  # the front door's: the replica's public port
    host: str = "127.0.0.1"
    register: list[str] = field(default_factory=list)  # model names; empty = every model of the registry or store
    drain_seconds: float = ServingSettings.drain_seconds
    drain_timeout_s: float = 60.0
    # Watched registry folder: its versions are served as they are published (`watcher.py`); None serves the
    # .mar files of `server.model_store` as they are.
    registry: Path | None = None
    keep_versions: int = ServingSettings.keep_versions

    def check(self) -> None:
        self.server.check()
        if not 0 < self.port <= 65535:
            raise SettingError("port", f"{self.port}: not a TCP port")
        if self.port in (self.server.inference_port, self.server.management_port):
            raise SettingError("port", f"{self.port} is also one of MMS's ports")
        if self.drain_seconds < 0 or self.drain_timeout_s < self.drain_seconds:
            raise SettingError("drain_seconds", f"must be between 0 and the drain timeout ({self.drain_timeout_s} s)")
        if self.keep_versions < 1:
            raise SettingError("keep_versions", f"must be at least 1, got {self.keep_versions}")
        if self.registry is not None and not Path(self.registry).is_dir():
            raise SettingError("registry", f"{self.registry}: no such folder")


def package_version() -> str:
    try:
        return metadata.version("onnx-edgecloud")
    except metadata.PackageNotFoundError:
        return "0"


class Replica:
    """MMS plus its front door; the front door's view of health (`frontdoor.ReplicaState`)."""

    def __init__(self, settings: ReplicaSettings) -> None:
        settings.check()
        self.settings = settings
        self.version = package_version()
        server = replace(settings.server, request_metrics=True)  # /metrics turns the handler's timings into histograms
        store = Path(settings.server.model_store)
        self.watcher: VersionWatcher | None = None
        self._versions_store: Path | None = None
        if settings.registry is None:
            self.static = settings.register or sorted(mar.stem for mar in store.glob("*.mar"))
            self.mms = MmsServer(server)
            self.catalog = Catalog.from_store(store, self.static)
        else:  # the archives of the versions served are built in a folder of the replica's own
            registry = Registry(settings.registry)
            self._versions_store = Path(tempfile.mkdtemp(prefix="edgecloud-versions-"))
            self.mms = MmsServer(replace(server, model_store=self._versions_store))
            # A model named that the registry has no version of is served from the store's archive, unversioned.
            self.static = [name for name in settings.register if not registry.versions(name) and (store / f"{name}.mar").is_file()]
            for name in self.static:
                shutil.copy2(store / f"{name}.mar", self._versions_store / f"{name}.mar")
            self.catalog = Catalog.from_store(self._versions_store, self.static)
            watched = [name for name in settings.register if name not in self.static] if settings.register else None
            self.watcher = VersionWatcher(registry, self.mms, self, names=watched, keep=settings.keep_versions)
        self.loading = True
        self.metrics = ReplicaMetrics(self.mms.log_dir / "model_metrics.log", self._restarts)
        self.door: FrontDoor | None = None
        self._health = Health(False, ("starting",))
        self._stopped = threading.Event()
        self._looker = threading.Thread(target=self._keep_looking, name="readiness", daemon=True)

    # -- ReplicaState ------------------------------------------------------------------
    def live(self) -> bool:
        return self.mms.process is not None and self.mms.process.poll() is None

    def readiness(self) -> Health:
        health = self._health
        if self.door is not None and self.door.draining.is_set():  # never cached: drain shows at once
            health = Health(False, (*health.reasons, "draining: finishing the requests in flight before stopping"))
        self.metrics.ready.set(1 if health.ok else 0)
        return health

    def model_health(self, mms_name: str) -> Health:
        if not self.live():
            return Health(False, ("Multi Model Server is not running",))
        return model_health(mms_name, self.mms.describe(mms_name), mms_name in self.mms.backend_pids())

    def in_flight_to(self, mms_name: str) -> int:
        return self.door.in_flight_to(mms_name) if self.door is not None else 0

    @property
    def names(self) -> list[str]:
        """The MMS names the models' names route to (what readiness requires)."""
        return sorted(info.mms_name for info in self.catalog.models.values())

    def _look(self) -> Health:
        running = self.live()
        names = self.names
        try:
            descriptions = {name: self.mms.describe(name) for name in names} if running else {}
            backends = self.mms.backend_pids() if running else {}
        except OSError:
            descriptions, backends = {}, {}
        health = readiness(names, descriptions, backends, mms_running=running, loading=self.loading, draining=False)
        waiting = self.watcher.unserved() if self.watcher is not None else []
        return Health(health.ok and not waiting, (*health.reasons, *waiting))

    def _keep_looking(self) -> None:
        while not self._stopped.is_set():
            try:
                self._health = self._look()
            except Exception as error:  # noqa: BLE001 - a look racing MMS's own changes: not ready, try again
                self._health = Health(False, (f"health unknown: {error}",))
            self._stopped.wait(READINESS_INTERVAL_S)

    def _restarts(self) -> dict[str, int]:
        recoveries = self.mms.supervisor.recoveries if self.mms.supervisor is not None else []
        counts = dict.fromkeys(self.names, 0)
        for recovery in recoveries:
            counts[recovery.model] = counts.get(recovery.model, 0) + 1
        return counts

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> "Replica":
        self.mms.start()
        assert self.mms.process is not None
        (self.mms.runtime_dir / MMS_GROUP_FILE).write_text(str(self.mms.process.pid))
        try:
            config = self.settings.server
            self._looker.start()
            self.door = FrontDoor(
                self, self.metrics, config.host, config.inference_port, host=self.settings.host, port=self.settings.port
            ).start()
            if self.static:
                self.mms.register_store([f"{name}.mar" for name in self.static])
            if self.watcher is not None:
                self.watcher.poll()  # the versions latest.json names now, before the replica reports ready
                self.watcher.start()
            if self.catalog.models:
                self.mms.wait_until_healthy()
            self.loading = False
        except BaseException:
            self.stop(drain_seconds=0, keep_logs=True)
            raise
        return self

    def stop(self, drain_seconds: float | None = None, keep_logs: bool = False) -> None:
        """Drain (readiness fails, answers go on), close the port once nothing is in flight, stop MMS
        (keeping its logs when asked: after a failure whose message names them)."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.door is not None:
            self.door.drain()
            wait = self.settings.drain_seconds if drain_seconds is None else drain_seconds
            started = time.monotonic()
            deadline = started + self.settings.drain_timeout_s
            while time.monotonic() < deadline and (time.monotonic() - started < wait or self.door.in_flight > 0):
                time.sleep(0.05)
            self.door.stop()
            self.door = None
        self._stopped.set()
        self.mms.stop(keep_logs=keep_logs)
        if self._versions_store is not None:
            shutil.rmtree(self._versions_store, ignore_errors=True)

    def run_until_signalled(self) -> int:
        """Serve until SIGTERM/SIGINT (then drain: 0) or until MMS dies (1)."""
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(0.5):
            if not self.live():
                print("replica: Multi Model Server exited; stopping", file=sys.stderr, flush=True)
                self.stop(drain_seconds=0)
                return 1
        print("replica: draining", file=sys.stderr, flush=True)
        self.stop()
        print("replica: stopped", file=sys.stderr, flush=True)
        return 0


def _env(name: str, default: object) -> str:
    return os.environ.get(f"EDGECLOUD_{name}", str(default))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mms_handlers.replica", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--model-store", type=Path, default=Path(_env("MODEL_STORE", "/models")), help="folder of .mar files (EDGECLOUD_MODEL_STORE)")
    add(
        "--registry",
        type=Path,
        default=Path(_env("REGISTRY", "")) if _env("REGISTRY", "") else None,
        help="registry folder to watch (EDGECLOUD_REGISTRY): each model's name follows the version its latest.json "
        "names, kept versions answer at /v2/models/NAME/versions/V; without it, the .mar files of --model-store",
    )
    add(
        "--register",
        action="append",
        default=[x for x in _env("REGISTER", "").split(",") if x],
        metavar="NAME",
        help="serve only this model (repeatable; EDGECLOUD_REGISTER=a,b); default every model of the registry or store",
    )
    add("--host", default=_env("HOST", "127.0.0.1"), help="front door address (EDGECLOUD_HOST)")
    add("--port", type=int, default=int(_env("PORT", 8080)), help="front door port: health, V2, metrics, MMS paths (EDGECLOUD_PORT)")
    add("--mms-inference-port", type=int, default=int(_env("MMS_INFERENCE_PORT", 8085)), help="MMS inference, on 127.0.0.1")
    add("--mms-management-port", type=int, default=int(_env("MMS_MANAGEMENT_PORT", 8081)), help="MMS management, on 127.0.0.1")
    ServingSettings.add_arguments(parser)
    add("--runtime-dir", type=Path, default=None, help="MMS's logs and temporary files (default a new temporary folder)")
    return parser


def settings_from(args: argparse.Namespace) -> ReplicaSettings:
    settings = ServingSettings.from_args(args)
    settings.check()
    server = settings.server_config(
        model_store=args.model_store,
        inference_port=args.mms_inference_port,
        management_port=args.mms_management_port,
        runtime_dir=args.runtime_dir,
    )
    return ReplicaSettings(
        server=server,
        port=args.port,
        host=args.host,
        register=list(args.register),
        drain_seconds=settings.drain_seconds,
        registry=args.registry,
        keep_versions=settings.keep_versions,
    )


def _stop_starting(signum: int, _frame: object) -> None:
    """SIGTERM/SIGINT while starting: unwind, so start() stops the MMS it started (the default action
    would end this process at once and leave MMS, in its own process group, running)."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_starting)
    try:
        if args.registry is None and not args.model_store.is_dir():
            raise SettingError("model_store", f"{args.model_store}: no such folder")
        replica = Replica(settings_from(args))
        replica.start()
    except SettingError as error:
        message = f"{flag_of(error.setting)} {error.problem}" if error.setting in FIELDS else str(error)
        print(f"replica: error: {message}", file=sys.stderr)
        return 2
    except (ServerError, OSError, KeyError, ValueError) as error:
        print(f"replica: error: {error}", file=sys.stderr)
        return 1
    print(f"replica: serving {', '.join(replica.names) or 'no models'} on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    return replica.run_until_signalled()
