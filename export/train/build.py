"""Write the training step of an exported model: train.onnx (+ train.edge.onnx) and model.json's `training`.

Order: choose the trainable initializers, cut the graph, re-run the tail in torch, trace and
export the step, join it to the frozen prefix, prove it against the source framework's own
optimizer (1 and 10 steps, a padded last batch), lower it for ONNX.js and prove that against
train.onnx, and locate every parameter's bytes in the inference files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx

from registry import model_json

from ..conversion import Conversion
from ..edge.lowering import lower
from ..edge.rules import BACKENDS, blocker_summary
from ..errors import ExportError, ParityError, UnsupportedModelError, one_line
from ..manifest import default_opset, file_entry
from ..parity import Criterion, Figure, as_criterion
from ..verify import onnxruntime_runner
from . import compose, data_inputs, step as steps
from .batch_norm import unfold_batch_norms
from .biases import restore_zero_biases
from .locations import locate
from .recurrent import gates_of, split_recurrent_biases, unshare_loop_parameters
from .reference import Match, Variable, complete, match
from .runner import TrainingStep, batches
from .spec import Loss, Optimizer, TrainingOptions
from .torch_graph import TorchTail, tail_constants
from .trainable import Split, choose, default_spec, initial_values, layers, split

TRAIN_FILE = "train.onnx"
TRAIN_EDGE_FILE = "train.edge.onnx"
PARITY_STEPS = (1, 10)
EDGE_CHECK_STEPS = 4
NOT_SUPPORTED = ("sklearn", "mxnet")


def refuse_unsupported(framework: str, options: TrainingOptions) -> None:
    """scikit-learn and MXNet models have no training step: an explicit --trainable says so."""
    if framework in NOT_SUPPORTED and options.enabled_explicitly:
        raise UnsupportedModelError(f"--trainable is not supported for {framework} models (use --trainable none)")


def keep_framework_variables(conversion: Conversion, options: TrainingOptions, progress: Callable[[str], None]) -> None:
    """Before model.onnx is written: one initializer per framework variable (biases.py, recurrent.py)."""
    if conversion.trainer is None or options.trainable == "none" or conversion.framework in NOT_SUPPORTED:
        return
    variables = conversion.trainer.variables()
    _unfold_trained_normalisations(conversion, options, variables, progress)
    restored = restore_zero_biases(conversion.model, variables)
    if restored:
        progress(f"kept {len(restored)} zero bias(es) the converter had folded as initializers: {', '.join(restored)}")
    split_recurrent_biases(conversion.model, variables)
    unshare_loop_parameters(conversion.model)


def _unfold_trained_normalisations(
    conversion: Conversion, options: TrainingOptions, variables: list[Variable], progress: Callable[[str], None]
) -> None:
    """Unfold the BatchNormalizations the converter folded (batch_norm.py), only when the step trains one.

    `head` never reaches one and an export without a step keeps the fused graph as before; `all`
    and `last:N` (counted on the unfolded graph, so in the framework's layers) keep the unfolded
    graph when the chosen set holds a tensor the unfolding wrote (γ, β, a fused conv's kernel).
    """
    if options.trainable in (None, "head"):
        return
    norms = conversion.trainer.normalisations()
    if not norms:
        return
    unfolded = onnx.ModelProto()
    unfolded.CopyFrom(conversion.model)
    written = unfold_batch_norms(unfolded, norms, variables)
    try:
        chosen: set[str] | None = set(choose(unfolded, options.trainable))
    except ExportError:
        chosen = None  # the plan fails on it too, counting the framework's layers (last:6 of 5)
    if written and (chosen is None or chosen & {name for names in written.values() for name in names}):
        conversion.model.CopyFrom(unfolded)
        progress(
            f"kept {len(written)} BatchNormalization layer(s) the converter had folded, to train their scale and bias: {', '.join(written)}"
        )


@dataclass
class Plan:
    split: Split
    loss: Loss
    logits: dict[str, str]  # trained output → tensor the loss reads (the logits before a Softmax/Sigmoid)
    from_logits: bool


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {name: node for node in model.graph.node for name in node.output}


def plan(model: onnx.ModelProto, options: TrainingOptions, framework: str, progress: Callable[[str], None]) -> Plan | None:
    """What to train and with which loss; None when there is no step to write."""
    refuse_unsupported(framework, options)
    spec = options.trainable
    if spec is None:
        if framework in NOT_SUPPORTED:
            progress(f"no training step: {framework} models have none")
            return None
        spec, why = default_spec(model)
        progress(why)
    if spec == "none":
        return None
    parts = split(model, spec, choose(model, spec))
    producers = _producers(model)
    finals = {output: producers[output].op_type for output in parts.outputs}
    if options.loss is None:
        kind = "cross-entropy" if all(op in ("Softmax",) for op in finals.values()) else "mse"
        loss = Loss(kind, inferred=True)
    else:
        loss = Loss(options.loss, inferred=False)
    activation = {"cross-entropy": "Softmax", "bce": "Sigmoid"}.get(loss.kind)
    logits = {o: producers[o].input[0] for o, op in finals.items() if activation and op == activation}
    if logits and len(logits) != len(parts.outputs):
        raise UnsupportedModelError(f"--loss {loss.kind}: some trained outputs end in {activation}, others do not")
    return Plan(parts, loss, logits, from_logits=not logits)


def trained_summary(model: onnx.ModelProto, parts: Split) -> dict[str, Any]:
    """model.json's `training.trained`: how many tensors and values the step trains, and what stays frozen."""
    values = initial_values(model, parts.parameters)
    frozen = [
        {"name": name, "node": node.name, "why": "BatchNormalization running statistics stay frozen (inference mode)"}
        for node in parts.tail
        if node.op_type == "BatchNormalization"
        for name in node.input[3:5]
        if name
    ]
    return {"tensors": len(values), "parameters": int(sum(v.size for v in values.values())), "frozen": frozen}


def _targets_for(plan_: Plan, predictions: dict[str, np.ndarray], rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    found = {}
    for output in plan_.split.outputs:
        value = predictions[output][:rows]
        if plan_.loss.kind == "cross-entropy":
            found[output] = np.eye(value.shape[-1], dtype=np.float32)[rng.integers(0, value.shape[-1], value.shape[:-1])]
        elif plan_.loss.kind == "bce":
            found[output] = rng.integers(0, 2, value.shape).astype(np.float32)
        else:
            found[output] = (value + rng.normal(0, float(np.std(value)) + 0.1, value.shape)).astype(np.float32)
    return found


def _parity_batches(conversion: Conversion, plan_: Plan, batch: int, count: int) -> list[tuple[dict, dict]]:
    """`count` batches of real rows; the last is shorter (padded in the step)."""
    rng = np.random.default_rng(1)
    run = onnxruntime_runner(conversion.model)
    ranges = data_inputs.ranges(conversion.model, conversion.sample)
    found = []
    for index in range(count):
        rows = batch if index < count - 1 or batch == 1 else max(1, batch // 2 - 1)
        inputs = {k: v[:rows] for k, v in compose.batch_feeds(conversion.sample, rows, rng, ranges).items()}
        found.append((inputs, _targets_for(plan_, run(inputs), rows, rng)))
    return found


def _pad(inputs: dict, targets: dict, batch: int) -> tuple[dict, dict, np.ndarray]:
    return next(batches(inputs, targets, batch))


def build_step(conversion: Conversion, plan_: Plan, optimizer: Optimizer, batch: int) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """train.onnx and the names/shapes of its inputs and outputs (the entry without files and parity)."""
    import torch

    model = conversion.model
    parts = plan_.split
    data = data_inputs.data_entries(model, batch)
    ranges = data_inputs.ranges(model, conversion.sample)
    feeds = compose.batch_feeds(conversion.sample, batch, np.random.default_rng(0), ranges)
    cut_values = compose.evaluate_cut(model, parts.cut, feeds)
    # Fed to the step: float cut tensors, and integer model inputs the tail reads (token ids into an
    # embedding table). Other integer cut tensors are shape plumbing: constant at batch B, frozen.
    fed_cut = [name for name in parts.cut if cut_values[name].dtype == np.float32 or name in ranges]
    frozen = {name: cut_values[name] for name in parts.cut if name not in fed_cut}
    params = initial_values(model, parts.parameters)
    constants = {**tail_constants(model, parts.tail, set(parts.parameters)), **frozen}
    tail = TorchTail(parts.tail, constants, default_opset(model))
    with torch.no_grad():
        known = tail(
            {**{k: torch.from_numpy(cut_values[k]) for k in fed_cut}, **{k: torch.from_numpy(v.copy()) for k, v in params.items()}}
        )
    output_shapes = {o: list(known[o].shape) for o in parts.outputs}
    for output, logits in plan_.logits.items():
        if plan_.loss.kind == "cross-entropy" and known[logits].dim() < 2:
            raise UnsupportedModelError(f"--loss cross-entropy: output {output!r} has no class axis")
    io = steps.StepIO(
        cut=fed_cut,
        targets=[steps.target_name(o) for o in parts.outputs],
        parameters=list(parts.parameters),
        state=steps.state_names(optimizer, len(parts.parameters)),
        needs_step=optimizer.needs_step,
    )
    function = steps.step_function(tail, io, parts.outputs, plan_.logits, plan_.loss, optimizer)
    example = steps.example_args(
        io,
        {k: cut_values[k] for k in fed_cut},
        [np.zeros(output_shapes[o], np.float32) for o in parts.outputs],
        [params[name] for name in parts.parameters],
        optimizer,
    )
    step_model = steps.export_step(function, io, example)
    train = compose.compose(model, step_model, fed_cut, batch)
    data = [entry for entry in data if entry["name"] in {v.name for v in train.graph.input}]
    fed = [entry["name"] for entry in data]
    compose.order_inputs(train, [*fed, *(n for n in io.inputs if n not in set(fed_cut) | set(fed))])
    try:
        onnx.checker.check_model(train, full_check=True)
    except Exception as error:
        raise ExportError(f"train.onnx is not valid ONNX: {str(error).splitlines()[0]}") from None
    names = {
        "data": data,
        "targets": [
            {
                "output": o,
                "input": steps.target_name(o),
                "dtype": "float32",
                "shape": output_shapes[o],
                "encoding": "one-hot" if plan_.loss.kind == "cross-entropy" else "value",
            }
            for o in parts.outputs
        ],
        "example_weight": steps.WEIGHT_INPUT,
        "learning_rate": steps.RATE_INPUT,
        **({"step": steps.STEP_INPUT} if optimizer.needs_step else {}),
    }
    parameters = [
        {"name": n, "shape": list(params[n].shape), "dtype": "float32", "input": n, "output": steps.new_name(n)} for n in parts.parameters
    ]
    state = [
        {
            "name": s,
            "parameter": parts.parameters[i % len(parts.parameters)],
            "shape": list(params[parts.parameters[i % len(parts.parameters)]].shape),
            "dtype": "float32",
            "input": s,
            "output": steps.new_name(s),
            "init": 0.0,
        }
        for i, s in enumerate(io.state)
    ]
    return train, {"parameters": parameters, "state": state, "inputs": names, "outputs": {"loss": steps.LOSS_OUTPUT}}


def _trajectory(step: TrainingStep, padded: list[tuple[dict, dict, np.ndarray]], params: dict, rate: float) -> list[tuple]:
    """(feeds-ready values, loss, params, state) after each step, starting from `params`."""
    state = step.initial_state()
    found = []
    for index, (inputs, targets, weights) in enumerate(padded, start=1):
        loss, params, state = step(inputs, targets, weights, params, state, rate, index)
        found.append((loss, params, state))
    return found


def prove_parity(
    conversion: Conversion,
    plan_: Plan,
    optimizer: Optimizer,
    train: onnx.ModelProto,
    names: dict[str, Any],
    batch: int,
    tolerance: Criterion | float,
) -> dict[str, Any]:
    """1 and 10 steps of train.onnx (onnxruntime) against the framework's optimizer on the same batches."""
    trainer = conversion.trainer
    params = initial_values(conversion.model, plan_.split.parameters)
    variables = trainer.variables()
    groups = [layer.parameters for layer in layers(conversion.model)]
    matches: dict[str, Match] = match(params, variables, gates_of(conversion.model), groups)
    complete(matches, variables, plan_.split.spec)
    real = _parity_batches(conversion, plan_, batch, max(PARITY_STEPS))
    padded = [_pad(inputs, targets, batch) for inputs, targets in real]
    step = TrainingStep(train.SerializeToString(), {**names, "batch_size": batch})
    ours = _trajectory(step, padded, dict(params), optimizer.learning_rate)
    keys = [matches[name].key for name in plan_.split.parameters]
    theirs = trainer.train(keys, plan_.loss, optimizer, plan_.from_logits, real)
    criterion = as_criterion(tolerance)
    figures: dict[str, Figure] = {}
    for count in PARITY_STEPS:
        worst = Figure(0.0, 0.0, False)
        for name in plan_.split.parameters:
            want = theirs[count - 1][matches[name].key]
            want = matches[name].onnx_layout(want, params[name].shape)
            got = ours[count - 1][1][name]
            if not (np.all(np.isfinite(got)) and np.all(np.isfinite(want))):
                worst = worst.worse(Figure(float("inf"), float("inf"), False))
            else:
                worst = worst.worse(criterion.judge(np.asarray(want, np.float64), got.astype(np.float64)))
        figures[str(count)] = worst
    against = trainer.describe(optimizer)
    if not all(figure.passed for figure in figures.values()):
        count, figure = max(figures.items(), key=lambda item: item[1].ratio)
        raise ParityError(
            f"training-step parity failed against {against}: parameters differ by {figure.max_abs_diff:.3g} after "
            f"{count} step(s) ({criterion.describe()})"
        )
    return {
        "against": against,
        "criterion": criterion.as_json(),
        "passed": True,
        "padded_last_batch": True,
        "steps": {count: figure.max_abs_diff for count, figure in figures.items()},
        "ratio": {count: figure.ratio for count, figure in figures.items()},
    }


def lower_step(
    train: onnx.ModelProto,
    names: dict[str, Any],
    conversion: Conversion,
    plan_: Plan,
    optimizer: Optimizer,
    batch: int,
    folder: Path,
    tolerance: Criterion | float,
) -> tuple[dict, dict]:
    """train.edge.onnx when ONNX.js cannot run train.onnx as exported; (files, training.edge entry).

    A step that takes integer ids runs on onnxruntime-web only: ONNX.js 0.1.8 has no int64 tensors
    (and the embedding's gradient scatters), so nothing is lowered and every backend says why.
    """
    ids = [entry["name"] for entry in names["inputs"]["data"] if entry["dtype"] != data_inputs.FLOAT]
    if ids:
        why = f"integer input(s) {', '.join(ids)}: ONNX.js has no int64 tensors, the step runs on onnxruntime-web"
        blocked = {backend: [why] for backend in BACKENDS}
        return {}, model_json.edge(file=TRAIN_FILE, runtime="onnxruntime-web", lowered=False, passes=[], blockers=blocked, backends=[])
    blockers = blocker_summary(train)
    if not any(blockers.values()):
        return {}, model_json.edge(
            file=TRAIN_FILE,
            runtime="onnxjs",
            lowered=False,
            passes=[],
            blockers=blockers,
            backends=[b for b in blockers if not blockers[b]],
        )
    step = TrainingStep(train.SerializeToString(), {**names, "batch_size": batch})
    real = _parity_batches(conversion, plan_, batch, EDGE_CHECK_STEPS)
    padded = [_pad(inputs, targets, batch) for inputs, targets in real]
    params = initial_values(conversion.model, plan_.split.parameters)
    trajectory = _trajectory(step, padded, dict(params), optimizer.learning_rate)
    feeds_list = []
    state = step.initial_state()
    for index, (inputs, targets, weights) in enumerate(padded):
        feeds_list.append(_feeds(names, inputs, targets, weights, params, state, optimizer, index + 1))
        _, params, state = trajectory[index]
    lowering = lower(train, feeds_list[0], tolerance, inputs=feeds_list)
    edge = model_json.edge(
        file=TRAIN_EDGE_FILE if lowering.changed else TRAIN_FILE,
        runtime=lowering.runtime,
        lowered=lowering.changed,
        passes=lowering.passes,
        blockers=lowering.blockers,
        backends=lowering.backends,
    )
    if not lowering.changed:
        return {}, edge
    path = Path(folder) / TRAIN_EDGE_FILE
    onnx.save(lowering.model, path)
    entry = file_entry(path, role="train-edge", opset=default_opset(lowering.model), parity={"train_model_vs_edge_model": lowering.parity})
    return {TRAIN_EDGE_FILE: entry}, edge


def _feeds(
    names: dict[str, Any], inputs: dict, targets: dict, weights: np.ndarray, params: dict, state: dict, optimizer: Optimizer, number: int
) -> dict[str, np.ndarray]:
    io = names["inputs"]
    feeds = {e["input"]: inputs[e["name"]] for e in io["data"]}
    feeds.update({e["input"]: targets[e["output"]] for e in io["targets"]})
    feeds[io["example_weight"]] = weights
    feeds[io["learning_rate"]] = np.array([optimizer.learning_rate], np.float32)
    if "step" in io:
        feeds[io["step"]] = np.array([number], np.float32)
    feeds.update({p["input"]: params[p["name"]] for p in names["parameters"]})
    feeds.update({s["input"]: state[s["name"]] for s in names["state"]})
    return feeds


def training_variant(
    conversion: Conversion,
    options: TrainingOptions,
    folder: Path,
    inference_files: list[str],
    *,
    tolerance: Criterion | float,
    progress: Callable[[str], None],
) -> tuple[dict, dict | None]:
    """Write the step files into `folder` (model.onnx and its edge file already there); (files, entry).

    With the default (`trainable` None) a step that cannot be built or proven never breaks the
    export: it goes on without train.onnx and says why in one line. An explicit --trainable fails
    with that line instead.
    """
    try:
        return _write_step(conversion, options, folder, inference_files, tolerance=tolerance, progress=progress)
    except Exception as error:  # noqa: BLE001 - the default never breaks an export that has no step to give
        for name in (TRAIN_FILE, TRAIN_EDGE_FILE):
            (Path(folder) / name).unlink(missing_ok=True)
        if options.trainable is not None:
            if isinstance(error, ExportError):
                raise
            raise ExportError(f"the training step failed: {one_line(error)}") from error
        progress(f"no training step: {one_line(error)}")
        return {}, None


def _write_step(
    conversion: Conversion,
    options: TrainingOptions,
    folder: Path,
    inference_files: list[str],
    *,
    tolerance: Criterion | float,
    progress: Callable[[str], None],
) -> tuple[dict, dict | None]:
    plan_ = plan(conversion.model, options, conversion.framework, progress)
    if plan_ is None:
        return {}, None
    if conversion.trainer is None:
        raise UnsupportedModelError(f"--trainable is not supported for {conversion.framework} models")
    optimizer = Optimizer.of(options, "keras" if conversion.framework == "keras" else "torch")
    trained = trained_summary(conversion.model, plan_.split)
    progress(
        f"exporting the training step ({plan_.split.spec}: {trained['tensors']} tensors, "
        f"{trained['parameters']:,} parameters, {plan_.loss.kind} loss, {optimizer.kind})"
    )
    train, names = build_step(conversion, plan_, optimizer, options.batch_size)
    progress(f"checking the training step against {conversion.framework}'s own optimizer")
    parity = prove_parity(conversion, plan_, optimizer, train, names, options.batch_size, tolerance)
    onnx.save(train, Path(folder) / TRAIN_FILE)
    progress("lowering the training step for the browser (ONNX.js)")
    edge_files, edge = lower_step(train, names, conversion, plan_, optimizer, options.batch_size, folder, tolerance)
    values = initial_values(conversion.model, plan_.split.parameters)
    located = {}
    for file in inference_files:
        try:
            located[file] = locate(Path(folder) / file, values)
        except ExportError as error:
            if file == inference_files[0]:
                raise
            # The lowering rewrote a trained tensor (an LSTM unrolled per gate): the page puts the
            # personalised parameters into the next file that has them all (the cloud file, on onnxruntime-web).
            progress(f"personalised inference skips {file}: {one_line(error)}")
    for entry in names["parameters"]:
        entry["locations"] = {file: found[entry["name"]] for file, found in located.items()}
    files = {TRAIN_FILE: file_entry(Path(folder) / TRAIN_FILE, role="train", opset=default_opset(train)), **edge_files}
    entry = model_json.training(
        file=TRAIN_FILE,
        edge=edge,
        trainable=plan_.split.spec,
        batch_size=options.batch_size,
        names=names,
        loss=plan_.loss.as_json(),
        optimizer=optimizer.as_json(),
        parity=parity,
        trained=trained,
    )
    progress(
        f"wrote {TRAIN_FILE}" + (f" and {TRAIN_EDGE_FILE}" if edge_files else "") + f" (step parity {max(parity['steps'].values()):.2e})"
    )
    return files, entry
