"""HTTP load with wrk (Debian's `wrk`): one call = one (URL, body, concurrency, duration) point.

wrk is a standard, C-written load generator; a short Lua script turns its GETs into POSTs with
our JSON body. `--latency` prints the percentiles we report; non-2xx answers are counted so a
failing peer cannot pass for a fast one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

WRK = shutil.which("wrk") or "/usr/bin/wrk"

_POST_SCRIPT = """\
local file = assert(io.open("{body}", "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass
class LoadResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers plus socket errors other than the closes of non-keep-alive servers


class LoadToolError(RuntimeError):
    """wrk is missing or printed something we cannot read."""


def wrk_version() -> str:
    try:
        out = subprocess.run([WRK, "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0].split(" Copyright")[0].strip() if text else "?"


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not match:
        raise LoadToolError(f"cannot read wrk latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(text: str) -> LoadResult:
    """Requests/sec, 50% and 99% latency, request and error counts from wrk --latency output."""
    try:
        rps = float(re.search(r"Requests/sec:\s*([\d.]+)", text).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))  # type: ignore[union-attr]
        total = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    except AttributeError:
        raise LoadToolError(f"unexpected wrk output:\n{text[-800:]}") from None
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sockets:
        connect, _read, write, timeout = (int(g) for g in sockets.groups())
        errors += connect + write + timeout  # "read" errors are closes by servers without keep-alive
    return LoadResult(rps, p50, p99, total, errors)


def run_wrk(url: str, body: bytes | None, connections: int, seconds: float, timeout_s: float = 10.0) -> LoadResult:
    """Load `url` (POST `body` if given, else GET) with `connections` open connections."""
    if not Path(WRK).exists():
        raise LoadToolError("wrk not found: install it with `apt-get install -y wrk` (make system does)")
    threads = max(1, min(2, connections))
    with tempfile.TemporaryDirectory(prefix="edgecloud-wrk-") as tmp:
        command = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s:g}s", "--latency"]
        if body is not None:
            body_file, script = Path(tmp) / "body.json", Path(tmp) / "post.lua"
            body_file.write_bytes(body)
            script.write_text(_POST_SCRIPT.format(body=body_file))
            command += ["-s", str(script)]
        done = subprocess.run(command + [url], capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    if done.returncode != 0:
        raise LoadToolError(f"wrk exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return parse_wrk(done.stdout)
