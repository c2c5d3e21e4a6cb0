"""Stop a server started in its own process group (`start_new_session=True`) and everything it spawned.

MMS, TorchServe and gunicorn fork workers that outlive their launcher if only it is signalled;
signalling the whole group is what leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def group_members(pgid: int) -> list[int]:
    """The live (non-zombie) processes of process group `pgid`, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def processes_with_env(variable: str, under: Path) -> list[int]:
    """Live processes whose environment sets `variable` to a path inside `under`, whatever their group.

    MMS gives its children its environment, and the supervisor starts a backend again with the one
    it had, so a runtime folder named there finds every process of an instance, also those in
    groups of their own or orphaned by a launcher killed outright."""
    prefix = str(Path(under).resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            key, _, value = item.decode("utf-8", "surrogateescape").partition("=")
            if key == variable and (os.path.realpath(value) + os.sep).startswith(prefix + os.sep):
                found.append(int(entry.name))
                break
    return found


def parent_pid(pid: int) -> int:
    """The parent's PID (0 once the process has gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def arguments(pid: int) -> list[str]:
    """The process's argv ([] once it has gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0")[:-1]]


def command_line(pid: int) -> str:
    """The process's arguments joined by spaces ("" once it has gone)."""
    return " ".join(arguments(pid))


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_process_group(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the group `process` leads, wait up to `timeout` until it is gone, then SIGKILL what is left."""
    if process.poll() is None or group_alive(process.pid):
        signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and group_alive(process.pid):
            process.poll()  # reap the launcher so a zombie does not keep the group alive
            time.sleep(0.1)
        if group_alive(process.pid):
            signal_group(process.pid, signal.SIGKILL)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


WORKER_SCRIPT = "mms/model_service_worker.py"


def model_of(argv: list[str]) -> str | None:
    """The model a backend (or worker) process serves, from its arguments; None for other processes."""
    if not any(WORKER_SCRIPT in part for part in argv) or "--model-name" not in argv[:-1]:
        return None
    return argv[argv.index("--model-name") + 1]
