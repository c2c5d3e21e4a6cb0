"""`edgecloud archive`: a registry version folder → MODEL_STORE/NAME.mar for MMS."""

from __future__ import annotations

import argparse
from pathlib import Path

from mms_handlers.engines import DEFAULT_ENGINE, KNOWN_ENGINES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "archive",
        help="package an exported model as an MMS .mar",
        description=(
            "Package REGISTRY/NAME/VERSION as MODEL_STORE/NAME.mar in Multi Model Server's format "
            "(MAR-INF/MANIFEST.json, handler mms_handlers.service:handle from the installed package). "
            "The ONNX file's SHA-256 is checked against model.json first."
        ),
    )
    parser.add_argument("version_dir", type=Path, metavar="REGISTRY/NAME/VERSION")
    parser.add_argument("--out", type=Path, required=True, metavar="MODEL_STORE", help="MMS model store folder")
    parser.add_argument("--name", help="model name inside MMS (default: the name in model.json)")
    parser.add_argument(
        "--engine",
        default=DEFAULT_ENGINE,
        choices=KNOWN_ENGINES,
        help="engine the MMS worker runs the model on, recorded in the .mar as engine.json (onnxruntime; "
        "mxnet is best effort: a model its ONNX importer cannot take fails registration naming the operator)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mms_handlers.archive import build_archive

    print(build_archive(args.version_dir, args.out, engine=args.engine, name=args.name))
    return 0
