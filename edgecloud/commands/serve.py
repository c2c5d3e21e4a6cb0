"""`edgecloud serve`: MMS + the page and registry, in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CliError, CommandFailed
from .aggregate import DATABASE_ENV

if TYPE_CHECKING:
    from ..federation import FederatedOptions
    from ..stack import StackOptions


def add_serving_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `serve` and `demo`."""
    parser.add_argument("--host", default="127.0.0.1", help="address for inference and the page (127.0.0.1)")
    parser.add_argument(
        "--management-host",
        default="127.0.0.1",
        help="address for the MMS management API (127.0.0.1); it has no authentication and "
        "registers models, so any other address needs an authenticating proxy in front",
    )
    parser.add_argument("--inference-port", type=int, default=8080, help="MMS inference API (1-32767)")
    parser.add_argument("--management-port", type=int, default=8081, help="MMS management API (1-32767)")
    parser.add_argument("--web-port", type=int, default=8000, help="page, browser runtimes and registry")
    from mms_handlers.settings import MMS_SETTINGS, ServingSettings

    ServingSettings.add_arguments(parser, MMS_SETTINGS)
    parser.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE",
        help="per-model override of workers, batch_size or max_batch_delay, e.g. mlp:batch_size=8",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="the one origin (scheme://host[:port]) browsers may call MMS from; default the page's own, "
        "http://HOST:WEB_PORT. MMS answers every request with one origin, so give one, or '*' for any site",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run Multi Model Server and the browser page",
        description=(
            "Start Multi Model Server on a generated config behind the replica front door (the same as the image: "
            "/predictions, OIP V2, /metrics, live/ready; inference, management and the page on 127.0.0.1 unless "
            "asked otherwise, CORS for the page's origin only). Each model of the store (or those named by "
            "--register) is served at the version its registry latest.json names, and follows it when it moves "
            "(docs/versions.md); a model the registry has no version of is served from its .mar. Serves "
            "web_onnxjs/ and the registry; drains and stops everything on Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument("--model-store", type=Path, required=True, help="folder of .mar files")
    parser.add_argument("--registry", type=Path, required=True, help="registry folder written by export")
    parser.add_argument(
        "--register",
        action="append",
        default=[],
        metavar="NAME.mar",
        help="register only this .mar of the model store (repeatable); URLs and other folders are refused",
    )
    add_serving_options(parser)
    from mms_handlers.settings import REPLICA_SETTINGS, ServingSettings

    ServingSettings.add_arguments(parser.add_argument_group("versions and drain (docs/versions.md)"), REPLICA_SETTINGS)
    scale = parser.add_argument_group("scale-out (HAProxy in front of several MMS replicas)")
    scale.add_argument(
        "--replicas",
        type=int,
        default=None,
        metavar="N",
        help="run N replicas (MMS + health/V2/metrics front door each) behind HAProxy on --gateway-port; "
        "replica i uses inference/management ports +2i and front door GATEWAY_PORT+1+i",
    )
    scale.add_argument(
        "--gateway-port",
        type=int,
        default=None,
        metavar="P",
        help="HAProxy's port: predictions, /v2, /metrics, page and registry (needs --replicas)",
    )
    add_federated_options(parser)
    parser.set_defaults(run=run)


def add_federated_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("federated averaging (docs/federated.md)")
    group.add_argument(
        "--federated",
        action="append",
        default=[],
        metavar="NAME",
        help="take parameter updates for model NAME (repeatable; its latest version needs a training entry)",
    )
    from ..round_flags import add_round_options

    add_round_options(group)
    group.add_argument(
        "--federated-db",
        default=None,
        metavar="PATH|URL",
        help="rounds and updates: a SQLite file (MODEL_STORE/federated.sqlite; one aggregator) or "
        "postgresql://... (with --replicas N, N aggregators share it); 'memory:' keeps nothing. Default "
        f"${DATABASE_ENV}, the aggregator's own variable: use it to keep a password out of `ps`",
    )


def federated_options_from(args: argparse.Namespace, model_store: Path, registry: Path, register: list[str]) -> FederatedOptions | None:
    """The FederatedOptions the flags ask for, checked before anything starts (None without --federated)."""
    from ..federation import FederatedOptions, load_model
    from ..round_flags import checked_federated_names, client_secret_from, round_settings_from

    names = checked_federated_names(args)
    if not names:
        return None
    for name in names:
        mar = f"{name}.mar"
        if not (Path(model_store) / mar).is_file() or (register and mar not in register):
            raise CliError(f"--federated {name}: {mar} is not among the models serve registers from {model_store}")
        load_model(Path(registry), name)  # CliError when it has no current version with a training entry
    return FederatedOptions(
        models=names,
        settings=round_settings_from(args),
        database=args.federated_db or os.environ.get(DATABASE_ENV),
        client_secret=client_secret_from(args.client_secret),
    )


def parse_model_options(values: list[str]) -> dict:
    """`NAME:KEY=VALUE` strings → {NAME: ModelOptions}."""
    from mms_handlers.names import name_problem
    from mms_handlers.server import ModelOptions

    options: dict[str, ModelOptions] = {}
    for value in values:
        name, _, setting = value.partition(":")
        key, equals, number = setting.partition("=")
        if not name or not equals:
            raise CliError(f"--model-option {value!r}: expected NAME:KEY=VALUE, e.g. mlp:batch_size=8")
        if problem := name_problem(name):
            raise CliError(f"--model-option {value!r}: {problem}")
        try:
            options.setdefault(name, ModelOptions()).set(key, number)
        except ValueError as error:
            raise CliError(f"--model-option {value!r}: {error}") from None
    return options


def options_from(args: argparse.Namespace, model_store: Path, registry: Path) -> StackOptions:
    from mms_handlers.server import ServerError, SettingError, mar_in_store
    from mms_handlers.settings import ServingSettings, flag_of

    from ..stack import StackOptions, allowed_origins

    if not 0 < args.web_port <= 65535:
        raise CliError(f"--web-port {args.web_port}: not a TCP port")
    if not Path(model_store).is_dir():
        raise CliError(f"model store not found: {model_store}")
    if not Path(registry).is_dir():
        raise CliError(f"registry not found: {registry}")
    register = getattr(args, "register", [])
    for mar in register:
        try:
            mar_in_store(Path(model_store), mar)
        except ServerError as error:
            raise CliError(f"--register: {error}") from None
    settings = ServingSettings.from_args(args)
    server = settings.server_config(
        model_store=Path(model_store),
        host=args.host,
        management_host=args.management_host,
        inference_port=args.inference_port,
        management_port=args.management_port,
        model_options=parse_model_options(args.model_option),
        cors_origins=list(args.cors_origin),
    )
    options = StackOptions(
        server=server,
        registry=Path(registry),
        web_port=args.web_port,
        register=register,
        federated=federated_options_from(args, model_store, registry, register),
        settings=settings,
    )
    try:
        settings.check()
        server.check()
        allowed_origins(options)
    except SettingError as error:  # the setting's own flag, e.g. "--batch-size must be at least 1, got 0"
        raise CliError(f"{flag_of(error.setting)} {error.problem}") from None
    except ServerError as error:  # its message names the host or origin at fault
        raise CliError(str(error)) from None
    return options


def serve_until_stopped(options: StackOptions) -> int:
    from ..stack import Stack

    stack = Stack(options)
    stack.start(progress=lambda message: print(f"serve: {message}", file=sys.stderr))
    urls = stack.urls()
    print(f"Page:        {urls['page']}")
    print(f"Predictions: {urls['inference']}/predictions/<name>   ({', '.join(stack.models) or 'no models'})")
    print(f"V2:          {urls['inference']}/v2/models/<name>[/versions/<v>]/infer, /v2/health/ready, /metrics")
    print(f"Management:  {urls['management']}")
    print(f"Registry:    {urls['registry']}")
    if "federated" in urls:
        print(f"Federated:   {urls['federated']}/<name>/updates")
    print("Press Ctrl-C to stop.", flush=True)
    log_dir = stack.mms.log_dir
    if not stack.wait_for_signal():
        raise CommandFailed(f"Multi Model Server exited unexpectedly; stopped the page too; see {log_dir}")
    print("stopped", file=sys.stderr)
    return 0


def gateway_options_from(args: argparse.Namespace):
    from mms_handlers.server import ServerError, SettingError
    from mms_handlers.settings import ServingSettings, flag_of

    from ..gateway.stack import GatewayOptions

    if args.gateway_port is None:
        raise CliError("--replicas needs --gateway-port, the port HAProxy listens on")
    if not 0 < args.gateway_port <= 65535:
        raise CliError(f"--gateway-port {args.gateway_port}: not a TCP port")
    if args.cors_origin:
        raise CliError("--cors-origin: behind the gateway the page and the cloud share one origin; no CORS is set")
    if args.client_secret is not None:
        raise CliError("--client-secret: behind the gateway, run `edgecloud aggregate --client-secret FILE` yourself (docs/federated.md)")
    stack = options_from(args, args.model_store, args.registry)
    options = GatewayOptions(
        server=stack.server,
        registry=stack.registry,
        replicas=args.replicas,
        gateway_port=args.gateway_port,
        web_port=args.web_port,
        register=stack.register,
        settings=ServingSettings.from_args(args),
        federated=stack.federated,
    )
    try:
        options.check()
    except SettingError as error:
        raise CliError(f"{flag_of(error.setting)} {error.problem}") from None
    except ServerError as error:
        raise CliError(str(error)) from None
    return options


def serve_gateway_until_stopped(options) -> int:
    from ..gateway.haproxy import haproxy_binary
    from ..gateway.stack import GatewayStack

    try:
        haproxy_binary()
    except FileNotFoundError as error:
        raise CommandFailed(str(error)) from None
    stack = GatewayStack(options)
    stack.start(progress=lambda message: print(f"serve: {message}", file=sys.stderr))
    urls = stack.urls()
    print(f"Gateway:     {urls['gateway']}  (/predictions/<name>, /v2/..., /metrics; {', '.join(stack.models) or 'no models'})")
    print(f"Page:        {urls['page']}")
    print(f"Registry:    {urls['registry']}")
    print(f"Replicas:    {urls['replicas']}")
    if "federated" in urls:
        print(f"Federated:   {urls['federated']}/<name>/updates")
    print("Press Ctrl-C to stop.", flush=True)
    if not stack.wait_for_signal():
        raise CommandFailed(f"HAProxy exited unexpectedly; stopped the replicas too; see {stack.haproxy.log_file}")
    print("stopped", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.replicas is None:
        if args.gateway_port is not None:
            raise CliError("--gateway-port needs --replicas N")
        return serve_until_stopped(options_from(args, args.model_store, args.registry))
    return serve_gateway_until_stopped(gateway_options_from(args))
