"""Bring back a model whose MMS backend process died, which MMS 1.1.11 never does by itself.

MMS runs one Python backend process per model, and that process forks one child per worker (the
child runs the handler). When a child dies, the backend forks a new one within about a second.
When the backend process dies (kill -9 of the process tree, the OOM killer), MMS only retries the
dead socket with a growing back-off (1 s, 1 s, 2 s, … up to 27 min) while /ping keeps saying
Healthy: the model is gone for good. The supervisor starts the backend again exactly as MMS
started it (same argv, environment and folder), so MMS's next retry
connects and the requests queued meanwhile are served. Unregistering and registering again
would not do: MMS drops the old queue without answering, and those clients wait for their timeouts.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .process_group import arguments, group_members, stop_process_group

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launch:
    """How MMS started a model's backend process, read from /proc while it lived."""

    pid: int
    argv: list[str]
    env: dict[str, str]
    cwd: str


@dataclass(frozen=True)
class Recovery:
    model: str
    noticed_at: float  # time.monotonic()
    seconds: float  # from noticing to the new backend process started
    error: str | None = None


def read_launch(pid: int) -> Launch | None:
    try:
        raw_env = Path(f"/proc/{pid}/environ").read_bytes()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    env = dict(item.decode("utf-8", "surrogateescape").split("=", 1) for item in raw_env.split(b"\0") if b"=" in item)
    argv = arguments(pid)
    return Launch(pid, argv, env, cwd) if argv else None


class Supervised(Protocol):
    """What the supervisor needs of a server (MmsServer is one), and no more."""

    log_dir: Path

    def backend_pids(self) -> dict[str, int]: ...

    def models(self) -> list[dict[str, Any]]: ...


class Supervisor:
    """A daemon thread checking the registered models' backend processes every `interval` seconds."""

    def __init__(self, server: Supervised, interval: float = 0.25, min_gap_s: float = 2.0) -> None:
        self.server = server
        self.interval = interval
        self.min_gap_s = min_gap_s  # a backend that keeps dying is started at most this often
        self.recoveries: list[Recovery] = []
        self.launches: dict[str, Launch] = {}
        self._dead_before: set[str] = set()
        self.started: list[subprocess.Popen[bytes]] = []  # backends started here, each leading its own group
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mms-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop watching, and stop the backends started here (they are outside MMS's process group)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        for process in self.started:
            stop_process_group(process, timeout=5)

    def process_ids(self) -> list[int]:
        """The live processes of the backends started here and of the workers they forked."""
        return [pid for process in self.started for pid in group_members(process.pid)]

    def check(self) -> None:
        """One round: remember how each live backend was started; start again those dead two rounds running.

        Two rounds, so a model MMS is unregistering (backend stopped, model still listed) is left alone.
        """
        backends = self.server.backend_pids()
        listed = {model.get("modelName") for model in self.server.models()}
        for model, pid in backends.items():
            known = self.launches.get(model)
            if (known is None or known.pid != pid) and (launch := read_launch(pid)) is not None:
                self.launches[model] = launch
        self.launches = {model: launch for model, launch in self.launches.items() if model in listed}
        dead = {model for model in self.launches if model not in backends}
        for model in sorted(dead & self._dead_before):
            if not self._stop.is_set() and self._may_restart(model):
                self._restart(model)
        self._dead_before = dead

    def _may_restart(self, model: str) -> bool:
        last = [r.noticed_at for r in self.recoveries if r.model == model]
        return not last or time.monotonic() - last[-1] >= self.min_gap_s

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - a scan racing MMS's own changes is tried again next round
                logger.debug("supervisor round failed", exc_info=True)

    def _restart(self, model: str) -> None:
        noticed = time.monotonic()
        launch = self.launches[model]
        logger.warning("the backend process of model %s died; starting it again", model)
        error = None
        try:
            # A process cannot join MMS's group from outside its session: it leads its own, stopped with MMS.
            with open(self.server.log_dir / "restarted_backends.log", "ab") as log:
                self.started.append(
                    subprocess.Popen(
                        launch.argv,
                        env=launch.env,
                        cwd=launch.cwd,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        except (OSError, ValueError) as failure:
            error = str(failure)
            logger.error("starting the backend of %s again failed: %s", model, error)
        self.recoveries.append(Recovery(model, noticed, round(time.monotonic() - noticed, 3), error))
