"""`edgecloud serve`: MMS + the page and registry, in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import CliError


def add_serving_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `serve` and `demo`."""
    parser.add_argument("--host", default="127.0.0.1", help="address for inference and the page (127.0.0.1)")
    parser.add_argument("--inference-port", type=int, default=8080)
    parser.add_argument("--management-port", type=int, default=8081, help="management API, always on 127.0.0.1")
    parser.add_argument("--web-port", type=int, default=8000, help="page, browser runtimes and registry")
    parser.add_argument("--workers", type=int, default=1, help="MMS workers per model")
    parser.add_argument("--cors-origin", action="append", default=[], help="extra origin allowed to call MMS")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run Multi Model Server and the browser page",
        description=(
            "Start Multi Model Server on a generated config (management on 127.0.0.1, "
            "decode_input_request=false, CORS for the page), register every .mar in the model store, "
            "wait until /ping says Healthy, serve web_onnxjs/ and the registry, and stop everything on "
            "Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument("--model-store", type=Path, required=True, help="folder of .mar files")
    parser.add_argument("--registry", type=Path, required=True, help="registry folder written by export")
    add_serving_options(parser)
    parser.set_defaults(run=run)


def options_from(args: argparse.Namespace, model_store: Path, registry: Path):
    from ..stack import StackOptions

    for flag, limit in (("inference_port", 32768), ("management_port", 32768), ("web_port", 65536)):
        port = getattr(args, flag)
        if not 0 < port < limit:
            # MMS 1.1.11 refuses port numbers from 32768 up ("Invalid port number").
            raise CliError(f"--{flag.replace('_', '-')} {port} must be between 1 and {limit - 1}")
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    if not Path(model_store).is_dir():
        raise CliError(f"model store not found: {model_store}")
    if not Path(registry).is_dir():
        raise CliError(f"registry not found: {registry}")
    return StackOptions(
        model_store=Path(model_store),
        registry=Path(registry),
        host=args.host,
        inference_port=args.inference_port,
        management_port=args.management_port,
        web_port=args.web_port,
        workers=args.workers,
        cors_origins=args.cors_origin,
    )


def serve_until_stopped(options) -> int:
    from ..stack import Stack

    stack = Stack(options)
    stack.start(progress=lambda message: print(f"serve: {message}", file=sys.stderr))
    urls = stack.urls()
    print(f"Page:        {urls['page']}")
    print(f"Predictions: {urls['inference']}/predictions/<name>   ({', '.join(stack.models) or 'no models'})")
    print(f"Management:  {urls['management']}")
    print(f"Registry:    {urls['registry']}")
    print("Press Ctrl-C to stop.", flush=True)
    stack.wait_for_signal()
    print("stopped", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    return serve_until_stopped(options_from(args, args.model_store, args.registry))
