"""The round flags, one set for `serve --federated` and `aggregate`: flags → FederatedSettings
(checked, the error naming the flag) and back (the gateway starts `aggregate` processes with them)."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from aggregation.settings import FederatedSettings, SettingError

from .errors import CliError

# FederatedSettings fields whose flag is not the field's name with dashes.
FEDERATED_FLAGS = {"max_body_bytes": "max-update-bytes"}


def add_round_options(group: argparse._ArgumentGroup) -> None:
    """The round rules, the same flags for `serve --federated` and `aggregate`."""
    group.add_argument(
        "--min-clients",
        type=int,
        default=None,
        metavar="K",
        help="a synchronous round closes with K updates (3); buffered rounds close with --buffer",
    )
    group.add_argument(
        "--round-deadline",
        type=float,
        default=None,
        metavar="S",
        help="or S seconds after it opened, with at least --deadline-min-clients updates (off)",
    )
    group.add_argument("--deadline-min-clients", type=int, default=1, metavar="M", help="fewest updates a deadline closes (1)")
    group.add_argument(
        "--aggregation",
        default="fedavg",
        choices=("fedavg", "trimmed-mean", "median"),
        help="fedavg: base + Σ nᵢΔᵢ/Σ nᵢ (exact, default); trimmed-mean / median: coordinate-wise, robust",
    )
    group.add_argument("--trim", type=float, default=0.1, help="fraction trimmed-mean cuts at each end (0.1)")
    group.add_argument("--clip", type=float, default=None, metavar="C", help="scale updates above L2 norm C down to C (off)")
    group.add_argument("--max-norm", type=float, default=1000.0, metavar="N", help="refuse updates above L2 norm N (1000)")
    group.add_argument(
        "--dp-noise",
        type=float,
        default=0.0,
        metavar="Z",
        help="central DP: Gaussian noise of σ = Z·C·max nᵢ/Σ nᵢ on the aggregate (needs --clip; 0 = off)",
    )
    group.add_argument(
        "--max-update-bytes", type=int, default=16 * 1024 * 1024, metavar="BYTES", help="larger update bodies are refused with 413 (16 MiB)"
    )
    group.add_argument(
        "--rounds",
        default="synchronous",
        choices=("synchronous", "buffered"),
        help="synchronous: a round takes updates on the current version only (default); buffered: "
        "FedBuff, a version every --buffer updates, also on versions up to --max-staleness behind",
    )
    group.add_argument("--buffer", type=int, default=None, metavar="K", help="buffered rounds: a version every K accepted updates")
    group.add_argument(
        "--max-staleness",
        type=int,
        default=None,
        metavar="S",
        help="buffered rounds: take updates computed on versions up to S behind the current one (4); older: 409",
    )
    group.add_argument(
        "--staleness-exponent",
        type=float,
        default=None,
        metavar="A",
        help="buffered rounds: an update S versions old counts (1+S)^-A (0.5, FedBuff's 1/sqrt(1+S))",
    )
    group.add_argument(
        "--client-secret",
        type=Path,
        default=None,
        metavar="FILE",
        help="take only updates carrying a client token signed with the secret in FILE "
        "(`edgecloud federated token`); others get 401 (off: any client id is taken)",
    )


def round_settings_from(args: argparse.Namespace) -> FederatedSettings:
    """The FederatedSettings the round flags ask for, checked (CliError naming the flag)."""
    if args.rounds == "buffered" and args.min_clients is not None:
        raise CliError("--min-clients applies to synchronous rounds; buffered rounds close with --buffer K")
    settings = FederatedSettings(
        min_clients=3 if args.min_clients is None else args.min_clients,
        round_deadline=args.round_deadline,
        deadline_min_clients=args.deadline_min_clients,
        aggregation=args.aggregation,
        trim=args.trim,
        clip=args.clip,
        max_norm=args.max_norm,
        dp_noise=args.dp_noise,
        max_body_bytes=args.max_update_bytes,
        rounds=args.rounds,
        buffer=args.buffer,
        max_staleness=args.max_staleness,
        staleness_exponent=args.staleness_exponent,
    )
    try:
        return settings.check()
    except SettingError as error:
        raise CliError(f"--{FEDERATED_FLAGS.get(error.setting, error.setting.replace('_', '-'))} {error.problem}") from None


def client_secret_from(path: Path | None) -> bytes | None:
    """The bytes of --client-secret FILE, or None; CliError naming what is wrong with the file."""
    from aggregation.tokens import read_secret

    if path is None:
        return None
    try:
        return read_secret(path)
    except ValueError as error:
        raise CliError(f"--client-secret: {error}") from None


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
        if value is not None and not (field.name == "min_clients" and settings.rounds == "buffered"):
            flags += [f"--{FEDERATED_FLAGS.get(field.name, field.name.replace('_', '-'))}", str(value)]
    return flags
