"""N replica processes (`python -m mms_handlers.replica`), on ports derived from the serve flags,
started again when one dies, as a Kubernetes ReplicaSet would.

Replica i: front door on GATEWAY_PORT + 1 + i, MMS inference on INFERENCE_PORT + 2i and
management on MANAGEMENT_PORT + 2i, all on 127.0.0.1 (only the gateway is public). A replica
killed outright leaves its MMS running (MMS leads its own process group); the replica wrote that
group's id into its runtime folder, and it is stopped before the replica is started again.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mms_handlers.process_group import processes_with_env, signal_group, stop_process_group
from mms_handlers.replica.runner import MMS_GROUP_FILE
from mms_handlers.server import MAX_PORT, ServerConfig, SettingError
from mms_handlers.settings import ServingSettings

logger = logging.getLogger(__name__)
MMS_LOG_VARIABLE = "LOG_LOCATION"  # set by MmsServer to a folder inside the replica's runtime folder


@dataclass(frozen=True)
class ReplicaPorts:
    front: int
    inference: int
    management: int


def replica_ports(count: int, gateway_port: int, inference_port: int, management_port: int) -> list[ReplicaPorts]:
    """Each replica's ports; SettingError names the flag whose derived ports do not fit."""
    if count < 1:
        raise SettingError("replicas", f"must be at least 1, got {count}")
    ports = [ReplicaPorts(gateway_port + 1 + i, inference_port + 2 * i, management_port + 2 * i) for i in range(count)]
    if ports[-1].front > 65535:
        raise SettingError("gateway_port", f"{gateway_port}: replica front doors need up to {ports[-1].front}")
    for setting, last in (("inference_port", ports[-1].inference), ("management_port", ports[-1].management)):
        if last > MAX_PORT:
            raise SettingError(setting, f"needs ports up to {last} for {count} replicas; MMS accepts 1-{MAX_PORT}")
    every = [gateway_port] + [port for p in ports for port in (p.front, p.inference, p.management)]
    if len(set(every)) != len(every):
        raise SettingError(
            "gateway_port",
            f"{gateway_port}: the replicas' derived ports overlap ({sorted(every)}); "
            "keep the gateway port away from the inference and management ports",
        )
    return ports


class Replica:
    """One replica process and its runtime folder (a fresh one per start, passed as --runtime-dir
    when `runtime_dir_flag`); ready when `ready_path` answers 200."""

    def __init__(
        self,
        index: int,
        ports: ReplicaPorts,
        command: list[str],
        root: Path,
        *,
        ready_path: str = "/v2/health/ready",
        runtime_dir_flag: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.index, self.ports, self.command, self.root = index, ports, command, root
        self.ready_path, self.runtime_dir_flag = ready_path, runtime_dir_flag
        self.env = dict(env or {})  # added to this process's environment (settings that must stay out of `ps`)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.runtime_dir = root

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.front}"

    def spawn(self) -> None:
        self.starts += 1
        self.runtime_dir = self.root / f"start-{self.starts}"
        self.runtime_dir.mkdir(parents=True)
        env = {**os.environ, **self.env}
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        with open(self.root / "replica.log", "ab") as log:
            self.process = subprocess.Popen(
                [*self.command, *(["--runtime-dir", str(self.runtime_dir)] if self.runtime_dir_flag else [])],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def mms_group(self) -> int | None:
        try:
            return int((self.runtime_dir / MMS_GROUP_FILE).read_text())
        except (OSError, ValueError):
            return None

    def clean_up_after_death(self) -> None:
        """Stop what a replica killed outright left behind (its MMS), and its runtime folder."""
        if (group := self.mms_group()) is not None:
            signal_group(group, signal.SIGKILL)
        if self.process is not None:
            signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.kill_leftovers()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def kill_leftovers(self) -> None:
        """SIGKILL every process MMS started for any start of this replica (MMS sets LOG_LOCATION into the
        start's runtime folder, and its children and restarted backends inherit it): those a process group
        misses, e.g. an MMS whose replica was stopped before it could write MMS's group id."""
        for pid in processes_with_env(MMS_LOG_VARIABLE, self.root):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self, timeout: float) -> None:
        """SIGTERM (the replica drains), then whatever is left, MMS included."""
        if self.process is not None:
            stop_process_group(self.process, timeout)
        if (group := self.mms_group()) is not None:
            signal_group(group, signal.SIGKILL)
        self.kill_leftovers()


class ProcessSet:
    """Starts `replicas`, waits until all are ready, starts again any that exits."""

    def __init__(self, replicas: list[Replica], drain_seconds: float = 3.0) -> None:
        self.replicas, self.drain_seconds = replicas, drain_seconds
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="replica-set", daemon=True)

    @property
    def front_ports(self) -> tuple[int, ...]:
        return tuple(replica.ports.front for replica in self.replicas)

    def start(self, timeout: float = 180.0) -> "ProcessSet":
        for replica in self.replicas:
            replica.root.mkdir(parents=True, exist_ok=True)
            replica.spawn()
        deadline = time.monotonic() + timeout
        waiting = list(self.replicas)
        while waiting:
            for replica in list(waiting):
                if replica.process is not None and replica.process.poll() is not None:
                    raise RuntimeError(f"replica {replica.index} exited at start; see {replica.root / 'replica.log'}")
                if replica.ready():
                    waiting.remove(replica)
            if time.monotonic() > deadline:
                raise RuntimeError(f"replicas {[r.index for r in waiting]} not ready after {timeout:.0f} s")
            time.sleep(0.2)
        self._watcher.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            for replica in self.replicas:
                if self._stop.is_set() or replica.process is None or replica.process.poll() is None:
                    continue
                logger.warning("replica %d exited (%s); starting it again", replica.index, replica.process.returncode)
                replica.clean_up_after_death()
                if not self._stop.is_set():
                    replica.spawn()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join(5)
        threads = [threading.Thread(target=r.stop, args=(self.drain_seconds + 30,)) for r in self.replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


class ReplicaSet(ProcessSet):
    """The MMS replicas (`python -m mms_handlers.replica`)."""

    def __init__(
        self,
        server: ServerConfig,
        count: int,
        gateway_port: int,
        root: Path,
        *,
        registry: Path,
        register: list[str] | None = None,
        settings: ServingSettings | None = None,
    ) -> None:
        self.registry = Path(registry)
        self.root = Path(root)
        self.settings = settings or ServingSettings()
        ports = replica_ports(count, gateway_port, server.inference_port, server.management_port)
        super().__init__(
            [Replica(i, p, self._command(server, p, register or []), self.root / f"replica-{i}") for i, p in enumerate(ports)],
            self.settings.drain_seconds,
        )

    def _command(self, server: ServerConfig, ports: ReplicaPorts, register: list[str]) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "mms_handlers.replica",
            "--registry",
            str(self.registry.resolve()),
            "--model-store",
            str(Path(server.model_store).resolve()),  # archives of models the registry lacks
            "--port",
            str(ports.front),
            "--mms-inference-port",
            str(ports.inference),
            "--mms-management-port",
            str(ports.management),
        ]
        mms = ServingSettings(
            workers=server.workers,
            batch_size=server.batch_size,
            max_batch_delay_ms=server.max_batch_delay_ms,
            job_queue_size=server.job_queue_size,
            max_request_size=server.max_request_size,
            java_heap_mb=server.java_heap_mb,
            drain_seconds=self.settings.drain_seconds,
            keep_versions=self.settings.keep_versions,
        )
        command += mms.arguments()
        for name in register:
            command += ["--register", name.removesuffix(".mar")]
        return command
