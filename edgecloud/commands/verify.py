"""`edgecloud verify REGISTRY/NAME/VERSION`: run the browser file in headless Chromium."""

from __future__ import annotations

import argparse
from pathlib import Path

from export.parity import ATOL, RTOL

from ..errors import CliError, CommandFailed


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="run the model in headless Chromium (ONNX.js cpu/wasm/webgl, onnxruntime-web) against onnxruntime",
        description=(
            "Serve the registry, open the harness page in headless Chromium and run the model's browser file "
            "on ONNX.js (cpu, wasm, webgl) and onnxruntime-web (wasm) on the recorded sample plus random inputs; "
            "compare with onnxruntime in Python, print a table, record it in model.json (edge.verified) and rank "
            "the runtimes that passed, fastest first, with their download size (edge.ranking: the page's default). "
            "A trainable model's training step (train.onnx / train.edge.onnx) is run the same way on ONNX.js "
            "(cpu, wasm) and onnxruntime-web and recorded in training.edge.verified. "
            "Exit 1 if any runtime that loads a graph fails the parity criterion |diff| <= atol + rtol*|reference| "
            "(docs/parity.md)."
        ),
    )
    parser.add_argument("version_dir", type=Path, metavar="REGISTRY/NAME/VERSION", help="an exported model version")
    parser.add_argument("--atol", type=float, default=ATOL, help=f"parity criterion's absolute term (default {ATOL:g})")
    parser.add_argument("--rtol", type=float, default=RTOL, help=f"parity criterion's relative term (default {RTOL:g})")
    parser.add_argument("--random", type=int, default=3, help="random inputs besides the sample (default 3)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs for the median latency (default 10)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from export.parity import Criterion

    from ..edge_verify import format_ranking, format_table, verify_version
    from ..train_verify import verify_training

    if not (args.atol >= 0 and args.rtol >= 0) or args.random < 0 or args.repeats < 1:
        raise CliError("--atol and --rtol must be >= 0, --random >= 0 and --repeats >= 1")
    settings = {"tolerance": Criterion(args.atol, args.rtol), "random_inputs": args.random, "repeats": args.repeats}
    report = verify_version(args.version_dir, **settings)
    print(format_table(report))
    print(format_ranking(report))
    failures = list(report.failures)
    training = verify_training(args.version_dir, **settings)
    if training is not None:
        print(f"\ntraining step (loss, new parameters, new optimizer state), {training.inputs} steps compared:")
        print(format_table(training))
        failures += [f"training step: {failure}" for failure in training.failures]
    if failures:
        raise CommandFailed("; ".join(failures))
    return 0
