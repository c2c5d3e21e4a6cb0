"""How a model is served, defined once for `edgecloud serve`, the replica and the container image.

One dataclass, one default per setting, filled from flags or `EDGECLOUD_*` environment variables
(what manifests set), as MLServer's `Settings` is. Before it, `serve` and the replica each had
their own argparse copy whose defaults drifted (batch delay 0 vs 100 ms, drain 3 vs 5 s). The
defaults chosen, and why:

- batch size 1 at a delay of 0 ms: no request ever waits for others. Measured side by side on an idle
  2-core machine, batch size 1 beat Flask + gunicorn by 1.1x / 1.5x / 1.6x at 1 / 8 / 32 clients with a
  lower p99, while batch size 8 at 0 ms had 2-3x Flask's p99 at 32 clients and a delay makes every
  lone request wait it out (docs/benchmarks-hot-path.md, "Server settings (issue 26)"). Larger
  machines that are never idle can choose `--batch-size 8 --max-batch-delay 1`.
- drain 5 s: after SIGTERM a replica keeps answering while the balancer stops sending. HAProxy
  drops it after about 1 s of failed checks; Kubernetes' readiness probe runs every 2 s and the
  endpoint removal then has to reach every node, so 5 s covers both (the local gateway only
  stops a few seconds later).
- keep 2 versions: the newest and the one before it, so a rollback and pages still running the
  previous version are served without keeping every version's workers in memory.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .server import DEFAULT_BATCH_DELAY_MS, DEFAULT_BATCH_SIZE, MIN_JAVA_HEAP_MB, ServerConfig, SettingError

ENV_PREFIX = "EDGECLOUD_"


@dataclass(frozen=True)
class _Field:
    flag: str  # the command-line flag, also the environment variable (EDGECLOUD_ + upper case)
    lowest: float
    unit: str
    help: str


MMS_SETTINGS = ("workers", "batch_size", "max_batch_delay_ms", "job_queue_size", "max_request_size", "java_heap_mb")
REPLICA_SETTINGS = ("drain_seconds", "keep_versions")
# Field → its flag, its lowest allowed value and its help; one table for flags, environment and check().
FIELDS = {
    "workers": _Field("workers", 1, "", "MMS workers per model version (onnxruntime threads = cores / workers)"),
    "batch_size": _Field("batch-size", 1, "", "most requests MMS hands the handler at once (1 = no batching)"),
    "max_batch_delay_ms": _Field(
        "max-batch-delay",
        0,
        " ms",
        "how long MMS waits to fill a batch of --batch-size > 1; a lone request then waits "
        "this long (0: batch only what is already queued)",
    ),
    "job_queue_size": _Field("job-queue-size", 1, "", "requests queued per model before MMS answers 503"),
    "max_request_size": _Field("max-request-size", 1, " bytes", "larger bodies are refused with 413"),
    "java_heap_mb": _Field(
        "java-heap", MIN_JAVA_HEAP_MB, " MB", "MMS's Java heap, fixed and reserved at start so memory stays flat under load"
    ),
    "drain_seconds": _Field("drain-seconds", 0, " s", "after SIGTERM, keep answering this long (readiness already failing) before closing"),
    "keep_versions": _Field("keep-versions", 1, "", "versions of each model kept registered (the newest K); older ones are unregistered"),
}


@dataclass
class ServingSettings:
    """MMS and front-door settings shared by every way of serving (docs/serving.md)."""

    workers: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    max_batch_delay_ms: int = DEFAULT_BATCH_DELAY_MS
    job_queue_size: int = 100
    max_request_size: int = 6553500
    java_heap_mb: int = 512
    drain_seconds: float = 5.0
    keep_versions: int = 2

    def check(self) -> None:
        """SettingError naming the first setting out of range (`setting` is the field, for the caller's flag)."""
        for name, rule in FIELDS.items():
            if (value := getattr(self, name)) < rule.lowest:
                lowest = int(rule.lowest) if float(rule.lowest).is_integer() else rule.lowest
                raise SettingError(name, f"must be at least {lowest}{rule.unit}, got {value}")

    def server_config(self, **mms: Any) -> ServerConfig:
        """A ServerConfig with these settings; `mms` gives the rest (model store, ports, hosts…)."""
        return ServerConfig(
            workers=self.workers,
            batch_size=self.batch_size,
            max_batch_delay_ms=self.max_batch_delay_ms,
            job_queue_size=self.job_queue_size,
            max_request_size=self.max_request_size,
            java_heap_mb=self.java_heap_mb,
            **mms,
        )

    def arguments(self) -> list[str]:
        """These settings as flags, for a child process (`serve --replicas` starting replicas)."""
        return [part for name, rule in FIELDS.items() for part in (f"--{rule.flag}", str(getattr(self, name)))]

    @classmethod
    def add_arguments(
        cls,
        parser: argparse.ArgumentParser | argparse._ArgumentGroup,
        names: tuple[str, ...] = tuple(FIELDS),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """One flag per setting in `names`; its default is EDGECLOUD_<FLAG> from `environ` when set, else the
        dataclass's. argparse converts an environment default with the flag's type, so a bad one is one usage line."""
        environ = os.environ if environ is None else environ
        defaults = cls()
        types = {f.name: f.type for f in fields(cls)}
        for name in names:
            rule = FIELDS[name]
            variable = ENV_PREFIX + rule.flag.replace("-", "_").upper()
            default = environ.get(variable, getattr(defaults, name))
            parser.add_argument(
                f"--{rule.flag}",
                dest=name,
                type=float if types[name] == "float" else int,
                default=default,
                help=f"{rule.help} ({variable}; default {getattr(defaults, name)})",
            )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServingSettings:
        """The settings the parsed flags give (a setting without a flag keeps its default)."""
        return cls(**{name: getattr(args, name) for name in FIELDS if hasattr(args, name)})


def flag_of(setting: str) -> str:
    """The command-line flag of a ServingSettings or ServerConfig field, e.g. `--max-batch-delay`."""
    return f"--{FIELDS[setting].flag}" if setting in FIELDS else f"--{setting.replace('_', '-')}"
