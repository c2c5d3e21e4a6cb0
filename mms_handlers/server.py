"""Start, watch, feed and stop one Multi Model Server instance.

Each instance gets its own runtime folder (TMPDIR for MMS's pid file, TEMP for unpacked
models and worker sockets, logs, config.properties) so two can run side by side, and it is
started in its own process group so stopping it leaves no java or worker process behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .engines.ort import THREADS_ENV, threads_per_worker
from .mar_check import MarError, check_mar
from .names import name_problem
from .process_group import arguments, command_line, group_members, model_of, parent_pid, stop_process_group
from .supervisor import Supervisor
from .worker_hooks import LOAD_ERRORS_FILE, REQUEST_METRICS_ENV

MAX_PORT = 32767  # MMS 1.1.11 refuses higher port numbers
MODEL_OPTION_KEYS = ("workers", "batch_size", "max_batch_delay")
MIN_JAVA_HEAP_MB = 128
# MMS batches what is already queued and, with a delay, waits that long for more: a lone request waits
# it out in full. On an idle 2-core machine batch size 1 met every goal of issue 26 where batch size 8
# at 0 ms had 2-3x Flask's p99 at 32 clients (docs/benchmarks-hot-path.md, "On an idle machine").
DEFAULT_BATCH_SIZE = 1
DEFAULT_BATCH_DELAY_MS = 0
# MMS's frontend threads (0 = netty's default, twice the cores: 4 + 4 here, with each model's worker threads on
# top). Figures in docs/benchmarks-hot-path.md ("Server settings").
NETTY_THREADS = 0
NETTY_CLIENT_THREADS = 0
# Log lines are written by a background thread (log4j2's async loggers), not by netty's and the workers' threads.
ASYNC_LOGGING = True
# log4j2.xml drops MMS's per-request lines unless this variable says NEUTRAL (ServerConfig.request_lines).
REQUEST_LINES_ENV = "EDGECLOUD_MMS_REQUEST_LINES"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# Hosts and origins go into config.properties lines: nothing that could end a line or add a path.
HOST_PATTERN = re.compile(r"[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]")
ORIGIN_PATTERN = re.compile(rf"https?://(?:{HOST_PATTERN.pattern})(?::[0-9]{{1,5}})?")


class ServerError(Exception):
    """MMS did not start, register or answer; the message says what and where the log is."""


class ModelLoadError(ServerError):
    """A worker tried to load the model and the handler said why it could not (the model's own fault,
    so trying again changes nothing); other ServerErrors may pass (MMS busy, a timeout)."""


class SettingError(ServerError):
    """One ServerConfig setting is out of range. `setting` is the field's name, so a command line can
    name its own flag for it; the message names the setting in words."""

    LABELS = {"max_batch_delay_ms": "max batch delay", "java_heap_mb": "Java heap"}

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{self.LABELS.get(setting, setting.replace('_', ' '))} {problem}")
        self.setting, self.problem = setting, problem


@dataclass
class ModelOptions:
    """Per-model overrides of the server-wide workers / batch size / batch delay (None = server's)."""

    workers: int | None = None
    batch_size: int | None = None
    max_batch_delay: int | None = None

    def set(self, key: str, value: str) -> None:
        """Set one option from text (`batch_size`, `=8`); ValueError names what is wrong."""
        if key not in MODEL_OPTION_KEYS:
            raise ValueError(f"unknown model option {key!r}; known: {', '.join(MODEL_OPTION_KEYS)}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"model option {key} needs an integer, got {value!r}") from None
        lowest = 0 if key == "max_batch_delay" else 1
        if number < lowest:
            raise ValueError(f"model option {key} must be at least {lowest}, got {number}")
        setattr(self, key, number)


def mar_in_store(model_store: Path, mar: str) -> Path:
    """The .mar file `mar` names inside the model store; anything else (URLs, other folders) is refused."""
    store = Path(model_store).resolve()
    candidate = (store / mar).resolve()
    if "://" in mar or candidate.parent != store or candidate.suffix != ".mar" or not candidate.is_file():
        raise ServerError(f"refusing to register {mar!r}: only .mar files inside the model store {store}")
    if problem := name_problem(candidate.stem):  # the file's stem is the model's name
        raise ServerError(f"refusing to register {mar!r}: {problem}")
    return candidate


@dataclass
class ServerConfig:
    model_store: Path
    inference_port: int = 8080
    management_port: int = 8081
    host: str = "127.0.0.1"
    # Management registers models (and so runs their handlers): loopback unless asked otherwise.
    management_host: str = "127.0.0.1"
    workers: int = 1
    cors_origins: list[str] = field(default_factory=list)
    job_queue_size: int = 100
    max_request_size: int = 6553500
    max_response_size: int = 6553500
    batch_size: int = DEFAULT_BATCH_SIZE
    max_batch_delay_ms: int = DEFAULT_BATCH_DELAY_MS
    java_heap_mb: int = 512
    supervise: bool = True  # start a model's backend process again when it dies (MMS does not)
    # The handler's per-request timings and MMS's PredictionTime in MMS's metrics log: one log line each,
    # which MMS pipes and writes again (docs/benchmarks-hot-path.md), so off unless something reads them (a
    # replica's /metrics) or EDGECLOUD_REQUEST_METRICS=1 is in the environment.
    request_metrics: bool = False
    # MMS's own per-request log lines ("Backend response time", Requests2XX): off, they cost the frontend CPU on
    # every request (benchmarks.server_variants measures them as `request-lines`).
    request_lines: bool = False
    model_options: dict[str, ModelOptions] = field(default_factory=dict)
    runtime_dir: Path | None = None

    def check(self) -> None:
        """Raise ServerError for settings MMS would reject or misbehave on."""
        for setting in ("inference_port", "management_port"):
            if not 0 < (port := getattr(self, setting)) <= MAX_PORT:
                raise SettingError(setting, f"{port}: Multi Model Server accepts 1-{MAX_PORT} only")
        for name, host in (("host", self.host), ("management host", self.management_host)):
            if not HOST_PATTERN.fullmatch(host):
                raise ServerError(f"{name} {host!r} is not a host name or IP address (IPv6 in [brackets])")
        if self.inference_port == self.management_port:
            raise ServerError(f"inference and management ports are both {self.inference_port}")
        for setting, lowest, unit in (
            ("workers", 1, ""),
            ("batch_size", 1, ""),
            ("job_queue_size", 1, ""),
            ("max_request_size", 1, ""),
            ("max_batch_delay_ms", 0, " ms"),
            ("java_heap_mb", MIN_JAVA_HEAP_MB, " MB"),
        ):
            if (value := getattr(self, setting)) < lowest:
                raise SettingError(setting, f"must be at least {lowest}{unit}, got {value}")
        for model in self.model_options:
            if problem := name_problem(model):
                raise ServerError(f"model options for {model!r}: {problem}")
        cors_origin_value(self.cors_origins)

    def options_for(self, model: str) -> tuple[int, int, int]:
        """(workers, batch_size, max_batch_delay_ms) for one model: its overrides, else the server's."""
        own = self.model_options.get(model, ModelOptions())
        return (
            own.workers if own.workers is not None else self.workers,
            own.batch_size if own.batch_size is not None else self.batch_size,
            own.max_batch_delay if own.max_batch_delay is not None else self.max_batch_delay_ms,
        )

    def most_workers(self) -> int:
        return max([self.workers, *(o.workers for o in self.model_options.values() if o.workers)])

    @property
    def inference_url(self) -> str:
        return f"http://{self.host}:{self.inference_port}"

    @property
    def management_url(self) -> str:
        return f"http://{self.management_host}:{self.management_port}"

    def exposure_warnings(self) -> list[str]:
        """What a person starting this server must know about who can reach it."""
        if self.management_host in LOOPBACK_HOSTS:
            return []
        return [
            f"WARNING: the management API listens on {self.management_host}:{self.management_port} without "
            "authentication; whoever reaches it can register models and so run code: keep it behind an "
            "authenticating proxy"
        ]


def config_properties(config: ServerConfig) -> str:
    """The generated config.properties (management on its own host, loopback by default)."""
    lines = [
        f"inference_address={config.inference_url}",
        f"management_address={config.management_url}",
        f"model_store={Path(config.model_store).resolve()}",
        # Parse bodies in our handler: MMS's own JSON decoding kills the worker on bad JSON.
        "decode_input_request=false",
        f"default_workers_per_model={config.workers}",
        f"job_queue_size={config.job_queue_size}",
        f"max_request_size={config.max_request_size}",
        f"max_response_size={config.max_response_size}",
        "enable_envvars_config=false",
        f"async_logging={str(ASYNC_LOGGING).lower()}",
        f"number_of_netty_threads={NETTY_THREADS}",
        f"netty_client_threads={NETTY_CLIENT_THREADS}",
        f"vmargs={java_options(config.java_heap_mb)}",
    ]
    if config.cors_origins:
        lines += [
            f"cors_allowed_origin={cors_origin_value(config.cors_origins)}",
            "cors_allowed_methods=GET, POST, PUT, OPTIONS",
            "cors_allowed_headers=Content-Type, Accept",
        ]
    return "\n".join(lines) + "\n"


def java_options(heap_mb: int) -> str:
    """A fixed-size heap, touched at start: MMS's memory is bounded and flat under load (the JVM's default
    heap is a quarter of the machine and grows for minutes), so resident growth after start means a leak."""
    return f"-Xms{heap_mb}m -Xmx{heap_mb}m -XX:+AlwaysPreTouch -XX:+UseG1GC"


def cors_origin_value(origins: list[str]) -> str:
    """The one `cors_allowed_origin` value for `origins`; ServerError when they are several.

    MMS 1.1.11 sends it verbatim as Access-Control-Allow-Origin whatever the request's Origin, and
    browsers accept exactly one origin or `*` there. Turning several into `*` would silently allow
    every site, so `*` is only ever what the caller asked for.
    """
    distinct = list(dict.fromkeys(origins))
    for origin in distinct:
        if origin != "*" and not ORIGIN_PATTERN.fullmatch(origin):
            raise ServerError(f"CORS origin {origin!r} is not scheme://host[:port] (no path, no trailing '/') or '*'")
    if "*" in distinct:
        return "*"
    if len(distinct) > 1:
        raise ServerError(
            f"CORS: Multi Model Server answers every request with one allowed origin, got {', '.join(distinct)}: "
            "allow one origin, or '*' explicitly to allow any"
        )
    return distinct[0] if distinct else ""


def worker_python_path(existing: str | None) -> str:
    """PYTHONPATH for MMS workers.

    MMS resolves the python executable's symlinks, so a virtualenv's interpreter starts as the
    base interpreter and would miss the venv's packages; name them (and this package) explicitly.
    """
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    paths.append(str(Path(__file__).resolve().parent.parent))
    if existing:
        paths.append(existing)
    return os.pathsep.join(dict.fromkeys(paths))


def _http(method: str, url: str, timeout: float = 10.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode("utf-8", "replace")


class MmsServer:
    """One MMS process tree; use as a context manager or call start()/stop()."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._own_runtime_dir = config.runtime_dir is None
        self.runtime_dir = Path(config.runtime_dir or tempfile.mkdtemp(prefix="edgecloud-mms-"))
        self.log_dir = self.runtime_dir / "logs"
        # Worker sockets live in TEMP; a Unix socket path must stay under ~107 bytes.
        self.temp_dir = self.runtime_dir / "temp"
        if len(str(self.temp_dir)) > 60:
            self.temp_dir = Path(tempfile.mkdtemp(prefix="ecmms-", dir="/tmp"))
        self.process: subprocess.Popen[bytes] | None = None
        self.supervisor: Supervisor | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> "MmsServer":
        self.config.check()
        for folder in (self.runtime_dir / "tmp", self.temp_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        config_file = self.runtime_dir / "config.properties"
        config_file.write_text(config_properties(self.config))
        log_config = self.runtime_dir / "log4j2.xml"
        log_config.write_text(resources.files("mms_handlers").joinpath("log4j2.xml").read_text())
        env = dict(os.environ)
        env.update(
            TMPDIR=str(self.runtime_dir / "tmp"),
            TEMP=str(self.temp_dir),
            LOG_LOCATION=str(self.log_dir),
            METRICS_LOCATION=str(self.log_dir),
            PYTHONUNBUFFERED="1",
        )
        env["PYTHONPATH"] = worker_python_path(env.get("PYTHONPATH"))
        env.setdefault(THREADS_ENV, str(threads_per_worker(self.config.most_workers())))
        if self.config.request_metrics:
            env[REQUEST_METRICS_ENV] = "1"
        env[REQUEST_LINES_ENV] = "NEUTRAL" if self.config.request_lines else "DENY"
        command = [
            sys.executable,
            "-m",
            "mms.model_server",
            "--start",
            "--foreground",
            "--mms-config",
            str(config_file),
            "--model-store",
            str(Path(self.config.model_store).resolve()),
            "--log-config",
            str(log_config),
        ]
        stdout = open(self.log_dir / "stdout.log", "ab")
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.runtime_dir,
        )
        stdout.close()
        try:
            self.wait_until_healthy(timeout, allow_no_models=True)
        except BaseException:
            self.stop(keep_logs=True)
            raise
        if self.config.supervise:
            self.supervisor = Supervisor(self)
            self.supervisor.start()
        return self

    def stop(self, timeout: float = 20.0, keep_logs: bool = False) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left.

        The runtime folder goes too, unless `keep_logs` (after a failure, whose message names the
        logs) or EDGECLOUD_KEEP_MMS_LOGS=1.
        """
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        process, self.process = self.process, None
        if process is None:
            return
        stop_process_group(process, timeout)
        if not self.temp_dir.is_relative_to(self.runtime_dir):
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        keep_logs = keep_logs or os.environ.get("EDGECLOUD_KEEP_MMS_LOGS") == "1"
        if self._own_runtime_dir and not keep_logs:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def __enter__(self) -> "MmsServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- health and management --------------------------------------------------------
    def ping(self) -> str:
        """The health word from /ping's body ("Healthy", "Partial Healthy", "Unhealthy"), or "down"."""
        try:
            _status, body = _http("GET", f"{self.config.inference_url}/ping", timeout=3)
        except (OSError, urllib.error.URLError):
            return "down"
        return body.get("status", "unknown") if isinstance(body, dict) else "unknown"

    def wait_until_healthy(self, timeout: float = 60.0, allow_no_models: bool = False) -> None:
        deadline = time.monotonic() + timeout
        last = "down"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(f"MMS exited with code {self.process.returncode}; see {self.log_dir}")
            last = self.ping()
            if last == "Healthy" or (allow_no_models and last != "down"):
                return
            time.sleep(0.2)
        raise ServerError(f"MMS /ping said {last!r} after {timeout:.0f}s; see {self.log_dir}")

    def register(
        self,
        mar: str,
        *,
        name: str | None = None,
        initial_workers: int | None = None,
        batch_size: int | None = None,
        max_batch_delay_ms: int | None = None,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        """Register a .mar that lies in the model store (URLs and paths outside it are refused).

        Batch size and delay can only be set here (MMS gives models loaded at start batch size 1).
        If the handler fails to load the model, the error names its reason (e.g. the operator an
        engine cannot import), taken from this instance's log.
        """
        candidate = mar_in_store(self.config.model_store, mar)
        if name is not None and (problem := name_problem(name)):
            raise ServerError(f"refusing to register {mar} as {name!r}: {problem}")
        try:
            check_mar(candidate)
        except MarError as error:
            raise ServerError(f"refusing to register {mar}: {error}") from None
        workers, batch, delay = self.config.options_for(name or candidate.stem)
        params = {
            "url": candidate.name,
            "initial_workers": initial_workers if initial_workers is not None else workers,
            "batch_size": batch_size if batch_size is not None else batch,
            "max_batch_delay": max_batch_delay_ms if max_batch_delay_ms is not None else delay,
            "synchronous": "true",
            "response_timeout": int(timeout),
        }
        if name:
            params["model_name"] = name
        url = f"{self.config.management_url}/models?{urllib.parse.urlencode(params)}"
        log_file, errors_file = self.log_dir / "mms_log.log", self.log_dir / LOAD_ERRORS_FILE
        log_start, errors_start = (path.stat().st_size if path.exists() else 0 for path in (log_file, errors_file))
        status, body = _http("POST", url, timeout=timeout)
        if status != 200:
            message = body.get("message") if isinstance(body, dict) else body
            # Only a 5xx means a worker tried to load the model and may have logged why.
            reason = _handler_error(log_file, log_start, errors_file, errors_start) if status >= 500 else None
            if status >= 500:
                self._wait_until_unlisted(name or candidate.stem)
            if reason:
                raise ModelLoadError(f"registering {mar} failed ({status}): {message}: {reason}; see {log_file}")
            raise ServerError(f"registering {mar} failed ({status}): {message}; see {log_file}")
        return body if isinstance(body, dict) else {"status": body}

    def unregister(self, name: str, timeout: float = 60.0) -> None:
        """Unregister model `name` and stop its workers (MMS answers once they are stopped). Requests still
        queued for it are dropped unanswered by MMS, so a caller first routes traffic elsewhere."""
        if problem := name_problem(name):
            raise ServerError(f"refusing to unregister {name!r}: {problem}")
        url = f"{self.config.management_url}/models/{urllib.parse.quote(name)}?timeout={int(timeout)}"
        status, body = _http("DELETE", url, timeout=timeout)
        if status not in (200, 404):
            message = body.get("message") if isinstance(body, dict) else body
            raise ServerError(f"unregistering {name} failed ({status}): {message}")

    def _wait_until_unlisted(self, name: str, timeout: float = 10.0) -> None:
        """MMS answers a failed registration before it has dropped the model; wait for that, so a
        caller that sees the error never finds the broken model still listed."""
        deadline = time.monotonic() + timeout
        while any(model.get("modelName") == name for model in self.models()) and time.monotonic() < deadline:
            time.sleep(0.1)

    def register_store(self, mars: list[str] | None = None) -> list[str]:
        """Register the named .mar files (default: every .mar in the store); returns the model names."""
        store = Path(self.config.model_store)
        chosen = [mar_in_store(store, mar) for mar in mars] if mars else sorted(store.glob("*.mar"))
        for mar in chosen:
            self.register(mar.name)
        return [mar.stem for mar in chosen]

    def process_ids(self) -> list[int]:
        """Every live process of this instance (the launcher, java and its Python workers).

        MMS runs in its own session, so they share its process group (other instances are untouched),
        except model backends the supervisor started again, each in a group of its own.
        """
        if self.process is None:
            return []
        restarted = self.supervisor.process_ids() if self.supervisor is not None else []
        return group_members(self.process.pid) + restarted

    def java_pid(self) -> int | None:
        return next((pid for pid in self.process_ids() if command_line(pid).startswith("java ")), None)

    def worker_pids(self) -> list[int]:
        """Every Python process of the models: per model its backend process, and the forks of it that serve
        Java's worker connections (and run the handler). A dead and restarted one shows as a new PID."""
        return sorted(pid for pid in self.process_ids() if model_of(arguments(pid)) is not None)

    def backend_pids(self) -> dict[str, int]:
        """Model name → PID of its live backend process (started by java, or again by the supervisor here)."""
        parents = {self.java_pid(), os.getpid()} - {None}
        found: dict[str, int] = {}
        for pid in self.worker_pids():
            if (model := model_of(arguments(pid))) is not None and parent_pid(pid) in parents:
                found[model] = pid
        return found

    def handler_pids(self) -> list[int]:
        """The processes running the handler: the backends' forks, one per worker."""
        backends = set(self.backend_pids().values())
        return [pid for pid in self.worker_pids() if pid not in backends]

    def models(self) -> list[dict[str, Any]]:
        _status, body = _http("GET", f"{self.config.management_url}/models")
        return body.get("models", []) if isinstance(body, dict) else []

    def describe(self, name: str) -> Any:
        _status, body = _http("GET", f"{self.config.management_url}/models/{urllib.parse.quote(name)}")
        return body


_HANDLER_ERROR = re.compile(r"WorkerLifeCycle - (?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$")


def _handler_error(log_file: Path, start: int, errors_file: Path, errors_start: int, wait: float = 15.0) -> str | None:
    """The last `SomeError: message` a worker wrote since `start` (its load failure), if any: from the
    handler's own load-error file (worker_hooks.LOAD_ERRORS_FILE), else from MMS's copy of the worker's
    output, which MMS logs after answering the registration and may cut short: wait a little.
    """
    deadline = time.monotonic() + wait
    while True:
        recorded = _text_since(errors_file, errors_start).splitlines()
        if recorded:
            return recorded[-1]
        found = [match for line in _text_since(log_file, start).splitlines() if (match := _HANDLER_ERROR.search(line))]
        if found:
            return f"{found[-1].group(1)}: {found[-1].group(2)}"
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)


def _text_since(path: Path, start: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
