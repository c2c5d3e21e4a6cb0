"""TorchServe 0.12 as another cloud peer, serving the very same .mar with the very same handler.

TorchServe descends from MMS: it loads `mms_handlers.service:handle` from our .mar unchanged
(same `handle(data, context)` contract, same management API). It is not a project dependency:
`make torchserve` (part of `make bench`'s setup) installs it with `pip install --no-deps --target
.edgecloud/torchserve-pkgs` (its own deps psutil, packaging, Pillow and wheel are already in the env),
outside the venv, so the benchmark itself never needs the network. If it is not installed or Java
cannot start it, the report says so and the other peers still run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from mms_handlers.ports import free_port
from mms_handlers.process_group import stop_process_group
from mms_handlers.server import worker_python_path

from .peers import wait_for_http

VERSION = "0.12.0"  # the Makefile's `torchserve` target reads the version to install from this line
PACKAGES = Path(__file__).resolve().parent.parent / ".edgecloud" / "torchserve-pkgs"


class TorchServeMissing(RuntimeError):
    """TorchServe is not installed where the benchmark looks (`make torchserve` installs it)."""


def require_installed(target: Path = PACKAGES) -> None:
    """Raise TorchServeMissing unless torchserve VERSION lies in `target`; installing is setup's job."""
    if not (target / "ts" / "model_server.py").exists():
        raise TorchServeMissing(f"TorchServe {VERSION} is not installed in {target} (run `make torchserve`)")
    if not (target / f"torchserve-{VERSION}.dist-info").is_dir():
        found = sorted(path.name for path in target.glob("torchserve-*.dist-info")) or ["no version"]
        raise TorchServeMissing(f"{target} holds {', '.join(found)}, not torchserve {VERSION} (run `make torchserve`)")


class TorchServePeer:
    """One TorchServe process tree on free ports, in its own runtime folder and process group."""

    def __init__(self, model_store: Path, workers: int) -> None:
        self.model_store = Path(model_store).resolve()
        self.workers = workers
        self.port, self.management_port, self.metrics_port = free_port(), free_port(), free_port()
        self.runtime = Path(tempfile.mkdtemp(prefix="edgecloud-torchserve-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "TorchServePeer":
        require_installed()
        for sub in ("tmp", "logs"):
            (self.runtime / sub).mkdir()
        config = self.runtime / "config.properties"
        config.write_text(
            "\n".join(
                [
                    f"inference_address={self.url}",
                    f"management_address=http://127.0.0.1:{self.management_port}",
                    f"metrics_address=http://127.0.0.1:{self.metrics_port}",
                    f"model_store={self.model_store}",
                    "decode_input_request=false",  # the handler parses bodies itself, as under MMS
                    f"default_workers_per_model={self.workers}",
                    "disable_token_authorization=true",
                    "enable_model_api=true",
                ]
            )
            + "\n"
        )
        env = dict(
            os.environ,
            TMPDIR=str(self.runtime / "tmp"),
            TEMP=str(self.runtime / "tmp"),
            LOG_LOCATION=str(self.runtime / "logs"),
            METRICS_LOCATION=str(self.runtime / "logs"),
            EDGECLOUD_ORT_THREADS="1",
        )
        env["PYTHONPATH"] = worker_python_path(os.pathsep.join(filter(None, [str(PACKAGES), env.get("PYTHONPATH")])))
        command = [
            sys.executable,
            "-m",
            "ts.model_server",
            "--start",
            "--foreground",
            "--ncs",
            "--ts-config",
            str(config),
            "--model-store",
            str(self.model_store),
            "--disable-token-auth",
            "--enable-model-api",
        ]
        with open(self.runtime / "logs" / "stdout.log", "ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.runtime
            )
        try:
            wait_for_http(f"{self.url}/ping", 90, self.process)
        except BaseException:
            self.__exit__()
            raise
        return self

    def register(self, mar: str, name: str) -> None:
        params = {"url": mar, "model_name": name, "initial_workers": self.workers, "batch_size": 1, "synchronous": "true"}
        request = urllib.request.Request(f"http://127.0.0.1:{self.management_port}/models?{urllib.parse.urlencode(params)}", method="POST")
        with urllib.request.urlopen(request, timeout=180) as response:
            if response.status != 200:
                raise RuntimeError(f"TorchServe could not register {mar}: HTTP {response.status}")

    def __exit__(self, *exc: object) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process_group(process)
        shutil.rmtree(self.runtime, ignore_errors=True)


def start_torchserve(stack: ExitStack, model_store: Path, mars: dict[str, str], workers: int) -> tuple[str | None, str]:
    """(inference URL or None, what the report says); the server lives as long as `stack`."""
    try:
        peer = stack.enter_context(TorchServePeer(model_store, workers))
        for name, mar in mars.items():
            peer.register(mar, name)
    except TorchServeMissing as missing:
        return None, f"Not measured: {missing}."
    except Exception as error:  # noqa: BLE001 - an optional peer: report why, go on without it
        return None, f"Not measured: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return peer.url, (
        f"Measured as a peer: TorchServe {VERSION} (installed by `make torchserve`: `pip install --no-deps "
        f"--target .edgecloud/torchserve-pkgs`, Java 17), serving the same .mar files with the same handler "
        f"(`mms_handlers.service:handle`, unchanged), {workers} workers per model, batch size 1, "
        "`decode_input_request=false`, token authorization off."
    )
