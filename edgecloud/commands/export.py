"""`edgecloud export`: a saved model → REGISTRY/NAME/VERSION/{model.onnx, model.json}."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from export.parity import ATOL, RTOL

from ..errors import CliError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained model to ONNX with a parity check",
        description=(
            "Convert a saved model to ONNX, check it with onnx's checker, prove that onnxruntime "
            "reproduces the source framework on the sample and 32 random inputs like it, and write "
            "REGISTRY/NAME/VERSION/model.onnx + model.json (+ NAME/latest.json). "
            "File types (--framework auto): .keras (keras); .pt2 exported program, .pt/.pth TorchScript (torch); "
            ".joblib/.pkl (sklearn); NAME-symbol.json with NAME-EPOCH.params beside it (mxnet); "
            ".onnx as is (onnx: checked, shape-inferred, its own opset kept, parity = onnxruntime on the file). "
            "TorchScript and MXNet files, and ONNX files with free dimensions besides the batch, need --sample."
        ),
        epilog=(
            "WARNING: .joblib/.pkl files are unpickled, and unpickling runs any code the file holds: "
            "they are refused unless you pass --trust-pickle. Only pass it for files you trust."
        ),
    )
    parser.add_argument(
        "model", type=Path, help="the saved model: .keras, .pt2, .pt/.pth, .joblib/.pkl (with --trust-pickle), NAME-symbol.json, .onnx"
    )
    parser.add_argument("--name", required=True, help="model name (letters, digits, '_' and '-')")
    parser.add_argument("--version", default="1", help="whole-number version (default 1); versions are immutable")
    parser.add_argument("--out", type=Path, required=True, metavar="REGISTRY", help="registry folder")
    parser.add_argument("--sample", type=Path, help="sample input: .npy for one input, .npz keyed by input name")
    parser.add_argument("--framework", default="auto", help="keras, torch, sklearn, mxnet or onnx; auto (default) picks by file type")
    parser.add_argument("--opset", type=int, default=13, help="ONNX opset for the cloud model (default 13; an .onnx file keeps its own)")
    parser.add_argument(
        "--atol",
        type=float,
        default=ATOL,
        help=f"parity: |diff| <= atol + rtol*|reference| per element vs the source (default {ATOL:g}; docs/parity.md)",
    )
    parser.add_argument("--rtol", type=float, default=RTOL, help=f"parity: see --atol (default {RTOL:g})")
    parser.add_argument("--force", action="store_true", help="overwrite an existing version")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow unpickling a scikit-learn .joblib/.pkl file, which runs any code it holds (trusted files only)",
    )
    parser.add_argument(
        "--no-edge",
        dest="edge",
        action="store_false",
        help="skip the browser lowering (the browser gets model.onnx as exported; blockers are still listed)",
    )
    parser.add_argument(
        "--freeze-input",
        action="append",
        metavar="NAME=VALUE",
        help="(.onnx only) fold an input every request feeds the same value into a constant, e.g. sr=16000; repeatable",
    )
    train = parser.add_argument_group("training step (train.onnx, docs/training.md)")
    train.add_argument(
        "--trainable",
        metavar="head|last:N|all|none",
        help="initializers the browser may fine-tune: head (the default where the model ends in a Dense/Linear "
        "layer), last:N layers, all, or none (no train.onnx)",
    )
    train.add_argument("--loss", metavar="mse|cross-entropy|bce", help="default: cross-entropy for a softmax output, else mse")
    train.add_argument("--optimizer", default="adam", metavar="sgd|adam", help="default adam (the source framework's flavour)")
    train.add_argument("--learning-rate", type=float, help="default 0.001 for adam, 0.01 for sgd")
    train.add_argument("--train-batch", type=int, default=32, help="fixed batch of train.onnx (default 32)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from export.edge.artifact import browser_plan
    from export.parity import Criterion
    from export.pipeline import export_model

    if args.opset < 7:
        raise CliError(f"--opset {args.opset} is too old; use 7 or newer")
    if not (args.atol >= 0 and args.rtol >= 0):
        raise CliError("--atol and --rtol must be numbers >= 0")
    result = export_model(
        args.model,
        name=args.name,
        version=args.version,
        out=args.out,
        framework=args.framework,
        sample=args.sample,
        opset=args.opset,
        tolerance=Criterion(args.atol, args.rtol),
        force=args.force,
        edge=args.edge,
        trust_pickle=args.trust_pickle,
        trainable=args.trainable,
        loss=args.loss,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        train_batch=args.train_batch,
        freeze_inputs=args.freeze_input,
        progress=lambda message: print(f"export: {message}", file=sys.stderr),
    )
    parity = result.manifest["parity"]["source_vs_onnxruntime"]["max_abs_diff"]
    training = result.manifest.get("training")
    step = f", training step parity {max(training['parity']['steps'].values()):.2e}" if training else ""
    print(f"{result.version_dir}  (parity max |diff| {parity:.2e}{step}); {browser_plan(result.manifest['edge'])}")
    return 0
