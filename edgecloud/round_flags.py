"""The round flags, one set for `serve --federated` and `aggregate`: flags → FederatedSettings
(checked, the error naming the flag) and back (the gateway starts `aggregate` processes with them)."""

from __future__ import annotations

import argparse
from dataclasses import fields

from aggregation.settings import FederatedSettings, SettingError

from .errors import CliError

# FederatedSettings fields whose flag is not the field's name with dashes.
FEDERATED_FLAGS = {"max_body_bytes": "max-update-bytes"}


def add_round_options(group: argparse._ArgumentGroup) -> None:
    """The round rules, the same flags for `serve --federated` and `aggregate`."""
    group.add_argument("--min-clients", type=int, default=3, metavar="K", help="a round closes with K updates (3)")
    group.add_argument("--round-deadline", type=float, default=None, metavar="S",
                       help="or S seconds after it opened, with at least --deadline-min-clients updates (off)")  # fmt: skip
    group.add_argument("--deadline-min-clients", type=int, default=1, metavar="M", help="fewest updates a deadline closes (1)")
    group.add_argument("--aggregation", default="fedavg", choices=("fedavg", "trimmed-mean", "median"),
                       help="fedavg: base + Σ nᵢΔᵢ/Σ nᵢ (exact, default); trimmed-mean / median: coordinate-wise, robust")  # fmt: skip
    group.add_argument("--trim", type=float, default=0.1, help="fraction trimmed-mean cuts at each end (0.1)")
    group.add_argument("--clip", type=float, default=None, metavar="C", help="scale updates above L2 norm C down to C (off)")
    group.add_argument("--max-norm", type=float, default=1000.0, metavar="N", help="refuse updates above L2 norm N (1000)")
    group.add_argument("--dp-noise", type=float, default=0.0, metavar="Z",
                       help="central DP: Gaussian noise of σ = Z·C·max nᵢ/Σ nᵢ on the aggregate (needs --clip; 0 = off)")  # fmt: skip
    group.add_argument("--max-update-bytes", type=int, default=16 * 1024 * 1024, metavar="BYTES",
                       help="larger update bodies are refused with 413 (16 MiB)")  # fmt: skip


def round_settings_from(args: argparse.Namespace):
    """The FederatedSettings the round flags ask for, checked (CliError naming the flag)."""
    settings = FederatedSettings(
        min_clients=args.min_clients, round_deadline=args.round_deadline, deadline_min_clients=args.deadline_min_clients,
        aggregation=args.aggregation, trim=args.trim, clip=args.clip, max_norm=args.max_norm, dp_noise=args.dp_noise,
        max_body_bytes=args.max_update_bytes,
    )  # fmt: skip
    try:
        return settings.check()
    except SettingError as error:
        raise CliError(f"--{FEDERATED_FLAGS.get(error.setting, error.setting.replace('_', '-'))} {error.problem}") from None


def checked_federated_names(args: argparse.Namespace) -> list[str]:
    names = list(dict.fromkeys(getattr(args, "federated", []) or []))
    for name in names:
        if name == "metrics":  # GET /federated/metrics is the aggregator's Prometheus endpoint
            raise CliError("--federated metrics: /federated/metrics is the aggregator's Prometheus endpoint; rename the model")
    return names




def settings_flags(settings: FederatedSettings) -> list[str]:
    """The round flags that give `settings` again."""
    flags: list[str] = []
    for field in fields(settings):
        value = getattr(settings, field.name)
        if value is not None:
            flags += [f"--{FEDERATED_FLAGS.get(field.name, field.name.replace('_', '-'))}", str(value)]
    return flags
