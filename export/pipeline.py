"""Export one model version into a registry folder: convert, check, prove parity, write files."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx

from registry import Registry, model_json

from . import converter as converters
from .edge.artifact import edge_variant
from .errors import BadInputError, ExportError, UnsupportedModelError
from .manifest import (
    MANIFEST_NAME,
    default_opset,
    file_entry,
    graph_inputs,
    tensor_specs,
    write_manifest,
)
from .parity import Criterion
from .signature import load_sample
from .train.build import keep_framework_variables, refuse_unsupported, training_variant
from .train.locations import as_raw_data
from .train.spec import DEFAULT_BATCH, DEFAULT_OPTIMIZER, TrainingOptions
from .verify import DEFAULT_TOLERANCE, Feeds, accepted_inputs, compare, onnxruntime_runner, remembered, require

MODEL_FILE = "model.onnx"
SAMPLE_FILE = "sample.json"
DEFAULT_OPSET = 13
# MMS refuses model names outside this pattern; the registry uses the same names. The serving
# side's copy is mms_handlers/names.py (export may not import it); a test holds the two equal.
# fullmatch, not match with `$`: `$` also matches before a trailing newline.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")


@dataclass
class ExportResult:
    version_dir: Path
    manifest: dict[str, Any]


def sample_json(feeds: Feeds) -> dict[str, Any]:
    """The sample as plain JSON, so the browser and `verify` can replay it without numpy."""
    return {
        "inputs": {
            name: {"dtype": str(array.dtype), "shape": list(array.shape), "data": array.reshape(-1).tolist()}
            for name, array in feeds.items()
        }
    }


def export_model(
    source: Path,
    *,
    name: str,
    version: str,
    out: Path,
    framework: str = "auto",
    sample: Path | None = None,
    opset: int = DEFAULT_OPSET,
    tolerance: Criterion | float = DEFAULT_TOLERANCE,
    force: bool = False,
    edge: bool = True,
    trust_pickle: bool = False,
    trainable: str | None = None,
    loss: str | None = None,
    optimizer: str = DEFAULT_OPTIMIZER,
    learning_rate: float | None = None,
    train_batch: int = DEFAULT_BATCH,
    freeze_inputs: list[str] | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> ExportResult:
    """Write `OUT/NAME/VERSION/{model.onnx, model.json, sample.json}` and `OUT/NAME/latest.json`.

    A file whose loading unpickles it (scikit-learn) can run any code it holds: it is refused unless
    `trust_pickle` says the caller trusts it. `trainable` (head | last:N | all | none; None: head
    where the model ends in a Dense/Linear layer) adds `train.onnx`, one optimizer step
    (`loss` mse | cross-entropy | bce, None: inferred; `optimizer` sgd | adam) over batches of
    `train_batch` (docs/training.md). `freeze_inputs` (`NAME=VALUE`) applies to .onnx files only.
    """
    training = TrainingOptions(trainable, loss, optimizer, learning_rate, train_batch).check()
    version_dir = check_target(name, version, out, force)
    source = Path(source)
    if not source.exists():
        raise BadInputError(f"model file not found: {source}")
    chosen = converters.pick(framework, source)
    if chosen.unpickles and not trust_pickle:
        raise BadInputError(
            f"{source.name} would be unpickled, which runs any code the file holds: pass --trust-pickle "
            "(trust_pickle=True) only for a file you trust"
        )
    refuse_unsupported(chosen.name, training)
    if freeze_inputs and chosen.name != "onnx":
        raise BadInputError("--freeze-input applies to .onnx files (--framework onnx) only")
    progress(f"converting {source.name} with the {chosen.name} converter (opset {opset})")
    if freeze_inputs:
        from .onnx_file import parse_frozen

        conversion = chosen.convert(source, load_sample(sample), opset, frozen=parse_frozen(freeze_inputs))
    else:
        conversion = chosen.convert(source, load_sample(sample), opset)
    return publish(conversion, version_dir, source_file=source.name, tolerance=tolerance, edge=edge, training=training, progress=progress)


def unknown_operators(model: onnx.ModelProto) -> list[str]:
    """Standard-domain node types ONNX does not define (tf2onnx leaves an unconvertible TF op in place)."""
    standard = ("", "ai.onnx", "ai.onnx.ml")
    return sorted({n.op_type for n in model.graph.node if n.domain in standard and not onnx.defs.has(n.op_type, n.domain)})


def check_target(name: str, version: str, out: Path, force: bool) -> Path:
    """Validate name and version before any (slow) conversion; returns OUT/NAME/VERSION."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise BadInputError(f"model name {name!r} must start with a letter and use only letters, digits, '_' and '-'")
    if not (str(version).isascii() and str(version).isdigit()):
        raise BadInputError(f"version {version!r} must be a whole number")
    version_dir = Path(out) / name / str(int(version))
    if version_dir.exists() and not force:
        raise BadInputError(f"{version_dir} already exists: versions are immutable, pick a new one or pass --force")
    return version_dir


def publish(
    conversion: converters.Conversion,
    version_dir: Path,
    *,
    source_file: str,
    tolerance: Criterion | float = DEFAULT_TOLERANCE,
    edge: bool = True,
    training: TrainingOptions = TrainingOptions(),
    progress: Callable[[str], None] = lambda message: None,
) -> ExportResult:
    """Check the graph, prove parity, then write the version folder atomically (any converter, file or API)."""
    name, version, out = version_dir.parent.name, version_dir.name, version_dir.parent.parent
    unknown = unknown_operators(conversion.model)
    if unknown:
        raise UnsupportedModelError(f"the model uses operators the {conversion.framework} converter left unconverted: {', '.join(unknown)}")
    keep_framework_variables(conversion, training, progress)
    try:
        # A converter that warns has run the full check itself and accepted its failure with onnxruntime's word.
        onnx.checker.check_model(conversion.model, full_check=not conversion.warnings)
    except Exception as error:
        raise ExportError(f"the converted graph is not valid ONNX: {str(error).splitlines()[0]}") from None

    for warning in conversion.warnings:
        progress(f"warning: {warning}")
    progress("checking parity against the source framework")
    reference = remembered(conversion.reference)
    inputs, drawn = accepted_inputs(reference, conversion.sample)
    report = require(
        compare(reference, onnxruntime_runner(conversion.model), inputs, tolerance),
        against=f"{conversion.framework} {conversion.framework_version}",
    )

    registry = Registry(out)
    # check_target refused an existing version unless --force: publishing then replaces it.
    with registry.stage(name, version) as staged:
        staging = staged.path
        # raw_data everywhere: the training entry's `locations` are byte ranges of raw_data.
        as_raw_data(conversion.model, [init.name for init in conversion.model.graph.initializer])
        onnx.save(conversion.model, staging / MODEL_FILE)
        (staging / SAMPLE_FILE).write_text(json.dumps(sample_json(conversion.sample)))
        progress("lowering for the browser (ONNX.js)" if edge else "checking what ONNX.js can run (--no-edge)")
        edge_files, edge_entry = edge_variant(
            conversion.model, conversion.sample, reference, inputs, staging, MODEL_FILE, enabled=edge, tolerance=tolerance
        )
        train_files, train_entry = training_variant(
            conversion, training, staging, [MODEL_FILE, *edge_files], tolerance=tolerance, progress=progress
        )
        manifest = model_json.manifest(
            name=name,
            version=version,
            source=model_json.source(conversion.framework, conversion.framework_version, source_file, warnings=conversion.warnings),
            opset=default_opset(conversion.model),
            ir_version=conversion.model.ir_version,
            inputs=tensor_specs(graph_inputs(conversion.model)),
            outputs=tensor_specs(list(conversion.model.graph.output)),
            files={
                MODEL_FILE: file_entry(staging / MODEL_FILE, role="cloud" if edge_files else "cloud+edge"),
                **edge_files,
                **train_files,
                SAMPLE_FILE: file_entry(staging / SAMPLE_FILE),
            },
            cloud_file=MODEL_FILE,
            edge=edge_entry,
            parity={"source_vs_onnxruntime": {**report.as_json(), "inputs": drawn}},
            training=train_entry,
        )
        write_manifest(staging, manifest)
        registry.publish(staged, replace=True)
    progress(
        f"wrote {version_dir / MODEL_FILE} and {MANIFEST_NAME} (parity {report.max_abs_diff:.2e}, "
        f"{report.ratio:.2g}x of what {report.tolerance.describe()} allows)"
    )
    return ExportResult(version_dir=version_dir, manifest=manifest)


def load_feeds(version_dir: Path) -> Feeds:
    """The sample recorded at export time, as numpy arrays."""
    content = json.loads((Path(version_dir) / SAMPLE_FILE).read_text())["inputs"]
    return {name: np.asarray(entry["data"], dtype=entry["dtype"]).reshape(entry["shape"]) for name, entry in content.items()}
