"""An ONNX file brought as is (tf2onnx, Optimum, paddle2onnx, YOLO exporters…) → the same Conversion.

There is no source framework to compare with: the reference is onnxruntime on the file exactly as
given, so parity proves that what the registry keeps (and every lowered browser file) computes what
the user's file computes. The checks a converter's own output never needed come first, each one
line: the file parses, its external data (if any) lies inside its own folder (onnx refuses a
`location` that escapes it; we name the problem), the opset is one onnx and onnxruntime know,
onnx's full checker and strict shape inference pass (or, when only the latter fails and onnxruntime
accepts the file, a warning in model.json), every input is a tensor a request can carry, and the
model runs on the sample.

`--freeze-input NAME=VALUE` turns an input a deployment always feeds the same value (a sample rate)
into a constant; the reference then feeds that value to the original file, so the proof covers it.
The model is saved with its weights inline (onnx.save), so the registry folder is self-contained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from .conversion import Conversion
from .errors import BadInputError, one_line
from .manifest import default_opset, graph_inputs, tensor_specs
from .signature import fit_sample, synthesize_sample
from .verify import Feeds, Runner, onnxruntime_runner

MIN_OPSET = 7
# onnxruntime 1.31 loads ai.onnx up to opset 26 (probed: 27 is refused at session creation).
MAX_OPSET = 26


def load_onnx(source: Path) -> onnx.ModelProto:
    """Parse the file and its external data; one line for a corrupt file or data outside its folder."""
    try:
        return onnx.load(str(source))
    except onnx.checker.ValidationError as error:
        text = one_line(error)
        if "outside" in text:
            raise BadInputError(f"{source.name}: external data must be a file inside the model's folder: {text}") from None
        raise BadInputError(f"{source.name}: {text}") from None
    except FileNotFoundError as error:
        raise BadInputError(f"{source.name}: external data file not found: {Path(error.filename or '').name}") from None
    except Exception as error:  # noqa: BLE001 - protobuf raises several private types
        raise BadInputError(f"{source.name} is not a readable ONNX model ({one_line(error)})") from None


def free_negative_dims(model: onnx.ModelProto) -> None:
    """paddle2onnx writes a free dimension as `dim_value: -1`: make it a free (unnamed) dimension."""
    for value in (*model.graph.input, *model.graph.output):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value < 0:
                dim.Clear()


# What a request, sample.json and the browser's tensors carry; other element types get one line.
INPUT_DTYPES = ("float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool")


def check_model(model: onnx.ModelProto, file: str) -> tuple[onnx.ModelProto, list[str]]:
    """Opset range, onnx's checker, input types, strict shape inference: (the inferred model, warnings).

    Strict shape inference failing is a warning, not a refusal, when onnx's checker passes and
    onnxruntime builds a session (onnx's inference of some function bodies, MeanVarianceNormalization's
    among them, fails on files both accept); the model is then inferred without strict mode."""
    try:
        opset = default_opset(model)
    except ValueError:
        raise BadInputError(f"{file} imports no ai.onnx operator set") from None
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise BadInputError(f"{file} uses opset {opset}; supported: {MIN_OPSET} to {MAX_OPSET}")
    if model.ir_version > onnx.IR_VERSION or model.ir_version < 3:
        raise BadInputError(f"{file} has IR version {model.ir_version}; supported: 3 to {onnx.IR_VERSION}")
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 - checker and inference raise several types
        raise BadInputError(f"{file} is not valid ONNX: {one_line(error)}") from None
    refuse_unsupported_inputs(model, file)
    warnings: list[str] = []
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as error:  # noqa: BLE001
        try:
            onnxruntime_runner(model)
        except Exception:  # noqa: BLE001 - onnxruntime agrees the file is broken: refuse with onnx's reason
            raise BadInputError(f"{file}: shape inference fails: {one_line(error)}") from None
        warnings.append(f"onnx's strict shape inference fails ({one_line(error)[:200]}); onnx's checker and onnxruntime accept the file")
        inferred = onnx.shape_inference.infer_shapes(model)
    if not graph_inputs(inferred):
        raise BadInputError(f"{file} has no inputs: nothing for a request to feed")
    return inferred, warnings


def refuse_unsupported_inputs(model: onnx.ModelProto, file: str) -> None:
    """One line for an input a request cannot carry (a sequence, map or optional, or a tensor of
    strings, float8, 4-bit or 2-bit integers, bfloat16 or complex numbers) or an output that is not a tensor."""
    for value in model.graph.output:
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            raise BadInputError(f"{file}: output {value.name!r} is a {kind.replace('_type', '')}; only tensor outputs are supported")
    for value in graph_inputs(model):
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            raise BadInputError(f"{file}: input {value.name!r} is a {kind.replace('_type', '')}; only tensor inputs are supported")
        elem = value.type.tensor_type.elem_type
        dtype = tensor_specs([value])[0]["dtype"]
        if dtype not in INPUT_DTYPES:
            name = onnx.TensorProto.DataType.Name(elem) if elem in onnx.TensorProto.DataType.values() else str(elem)
            raise BadInputError(f"{file}: input {value.name!r} holds {name} tensors; supported input types: {', '.join(INPUT_DTYPES)}")


def parse_frozen(pairs: list[str] | None) -> dict[str, str]:
    """`NAME=VALUE` strings → {name: value text}; one line for a malformed pair."""
    frozen: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise BadInputError(f"--freeze-input {pair!r}: expected NAME=VALUE (VALUE a number or a JSON list)")
        frozen[name] = value
    return frozen


def _frozen_value(spec: dict, text: str) -> np.ndarray:
    try:
        value = np.asarray(json.loads(text), dtype=spec["dtype"])
    except (ValueError, TypeError):
        raise BadInputError(f"--freeze-input {spec['name']}={text}: not a number or list of {spec['dtype']}") from None
    shape = spec["shape"]
    if all(dim is not None for dim in shape) and value.size == int(np.prod(shape, dtype=np.int64)):
        return value.reshape(shape)
    if value.ndim != len(shape) or any(want not in (None, got) for want, got in zip(shape, value.shape)):
        raise BadInputError(f"--freeze-input {spec['name']}: value of shape {list(value.shape)} does not fit {shape}")
    return value


def freeze_inputs(model: onnx.ModelProto, frozen: Mapping[str, str]) -> tuple[onnx.ModelProto, Feeds]:
    """The model with each frozen input replaced by an initializer, and the values frozen."""
    specs = {spec["name"]: spec for spec in tensor_specs(graph_inputs(model))}
    values: Feeds = {}
    for name, text in frozen.items():
        if name not in specs:
            raise BadInputError(f"--freeze-input {name}: the model has no input {name!r}; inputs: {', '.join(specs)}")
        values[name] = _frozen_value(specs[name], text)
    if len(values) == len(specs):
        raise BadInputError("--freeze-input would freeze every input: a request must feed at least one")
    result = onnx.ModelProto()
    result.CopyFrom(model)
    kept = [value for value in result.graph.input if value.name not in values]
    del result.graph.input[:]
    result.graph.input.extend(kept)
    result.graph.initializer.extend(numpy_helper.from_array(array, name) for name, array in values.items())
    return result, values


def _reference(model: onnx.ModelProto, frozen: Feeds) -> Runner:
    """onnxruntime on the file as given, fed the frozen values besides the request's inputs."""
    run = onnxruntime_runner(model)
    return lambda feeds: run({**feeds, **frozen})


class OnnxConverter:
    name = "onnx"
    suffixes = (".onnx",)
    unpickles = False

    def convert(self, source: Path, sample: Feeds | np.ndarray | None, opset: int, frozen: Mapping[str, str] | None = None) -> Conversion:
        """`opset` is ignored: a given file keeps its own opset (recorded in model.json)."""
        import onnxruntime

        loaded = load_onnx(source)
        free_negative_dims(loaded)
        original, warnings = check_model(loaded, source.name)
        model, values = freeze_inputs(original, frozen or {})
        specs = tensor_specs(graph_inputs(model))
        feeds = fit_sample(sample, specs) if sample is not None else synthesize_sample(specs)
        try:
            reference = _reference(original, values)
            reference(feeds)
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own private types
            raise BadInputError(f"onnxruntime cannot run {source.name} on the sample: {one_line(error)}") from None
        producer = f"{original.producer_name} {original.producer_version}".strip() or "unknown exporter"
        return Conversion(
            model, reference, feeds, "onnx", f"{producer} (reference: onnxruntime {onnxruntime.__version__})", warnings=warnings
        )
