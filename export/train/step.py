"""One optimizer step as a pure torch function, traced and exported as a plain `ai.onnx` graph.

`(cut…, targets…, example_weight, learning_rate, [step], params…, state…) → (loss, params…, state…)`.
The gradient is `torch.func.grad_and_value` of the masked mean loss `Σ wᵢ·lossᵢ / Σ wᵢ`; the
function is traced by `make_fx` with the core ATen decompositions and exported by
`torch.onnx.export(dynamo=True, optimize=False)`: onnxscript's optimizer folds Adam's epsilon
away (STACK_FACTS "Training as an ONNX graph"). Losses are written on float targets (one-hot for
cross-entropy), never through `nll_loss`, whose exported backward lacks the mean's 1/N.
Log-softmax is spelt out (shift by the detached maximum: the same value and gradient) so the
step needs no LogSoftmax, which ONNX.js lacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import onnx

from ..errors import ExportError, one_line
from ..quiet import silenced
from .spec import Loss, Optimizer
from .torch_backward import decompositions
from .torch_graph import TorchTail

if TYPE_CHECKING:
    import torch

STEP_OPSET = 18
LOSS_OUTPUT = "loss"
WEIGHT_INPUT = "example_weight"
RATE_INPUT = "learning_rate"
STEP_INPUT = "step"
_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "torch.fx")


@dataclass
class StepIO:
    """Names of the step graph's inputs and outputs, in the contract's order."""

    cut: list[str]
    targets: list[str]  # one per trained output: "target.<output>"
    parameters: list[str]
    state: list[str]  # per optimizer slot, per parameter: "adam.m.0", ...
    needs_step: bool

    @property
    def inputs(self) -> list[str]:
        fixed = [WEIGHT_INPUT, RATE_INPUT] + ([STEP_INPUT] if self.needs_step else [])
        return [*self.cut, *self.targets, *fixed, *self.parameters, *self.state]

    @property
    def outputs(self) -> list[str]:
        return [LOSS_OUTPUT, *(new_name(name) for name in [*self.parameters, *self.state])]


def new_name(name: str) -> str:
    return f"{name}.new"


def target_name(output: str) -> str:
    return f"target.{output}"


def state_names(optimizer: Optimizer, count: int) -> list[str]:
    return [f"{optimizer.kind}.{slot}.{index}" for slot in optimizer.state_names for index in range(count)]


def _log_softmax(z: "torch.Tensor") -> "torch.Tensor":
    import torch

    shifted = z - torch.amax(z, dim=-1, keepdim=True).detach()
    return shifted - torch.log(torch.sum(torch.exp(shifted), dim=-1, keepdim=True))


def per_example_loss(kind: str, prediction: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
    """Loss of each row: mse on values, cross-entropy/bce on logits (class axis last)."""
    import torch

    rows = prediction.shape[0]
    if kind == "mse":
        error = prediction - target
        return (error * error).reshape(rows, -1).mean(dim=1)
    if kind == "cross-entropy":
        return -(target * _log_softmax(prediction)).reshape(rows, -1, prediction.shape[-1]).sum(dim=-1).mean(dim=1)
    if kind == "bce":
        z = prediction
        elementwise = torch.relu(z) - z * target + torch.log(1 + torch.exp(-torch.abs(z)))
        return elementwise.reshape(rows, -1).mean(dim=1)
    raise ValueError(kind)


def _update(optimizer: Optimizer, params, grads, state, rate, step):
    """New params and state, following the flavor's own update rule (keras or torch)."""
    import torch

    if optimizer.kind == "sgd":
        return [p - rate * g for p, g in zip(params, grads)], []
    count = len(params)
    ms, vs = state[:count], state[count:]
    b1, b2, eps = optimizer.beta1, optimizer.beta2, optimizer.epsilon
    # βᵗ as exp(t·ln β): ONNX.js has no Pow; the two agree to float32 rounding.
    bias1 = 1 - torch.exp(step * math.log(b1))
    bias2 = 1 - torch.exp(step * math.log(b2))
    new_params, new_m, new_v = [], [], []
    for p, g, m, v in zip(params, grads, ms, vs):
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2) if optimizer.flavor == "keras" else v * b2 + g * g * (1 - b2)
        if optimizer.flavor == "keras":  # keras.optimizers.Adam.update_step
            alpha = rate * torch.sqrt(bias2) / bias1
            p = p - (m * alpha) / (torch.sqrt(v) + eps)
        else:  # torch.optim.Adam (single tensor, no amsgrad)
            p = p - (rate / bias1) * (m / (torch.sqrt(v) / torch.sqrt(bias2) + eps))
        new_params.append(p)
        new_m.append(m)
        new_v.append(v)
    return new_params, new_m + new_v


def step_function(
    tail: TorchTail, io: StepIO, outputs: list[str], logits: dict[str, str], loss: Loss, optimizer: Optimizer
) -> Callable[..., tuple]:
    """The pure step; `logits[output]` names the tensor a cross-entropy/bce output is computed from."""
    import torch
    from torch.func import grad_and_value

    n_cut, n_targets, n_params = len(io.cut), len(io.targets), len(io.parameters)

    def step(*args: "torch.Tensor") -> tuple:
        cut = dict(zip(io.cut, args[:n_cut]))
        targets = args[n_cut : n_cut + n_targets]
        rest = args[n_cut + n_targets :]
        weight, rate = rest[0], rest[1]
        step_number = rest[2] if io.needs_step else None
        offset = 3 if io.needs_step else 2
        params = tuple(rest[offset : offset + n_params])
        state = list(rest[offset + n_params :])

        def objective(values: tuple) -> "torch.Tensor":
            known = tail({**cut, **dict(zip(io.parameters, values))})
            total = torch.zeros(())
            for output, target in zip(outputs, targets):
                prediction = known[logits.get(output, output)]
                total = total + (weight * per_example_loss(loss.kind, prediction, target)).sum() / weight.sum()
            return total

        grads, value = grad_and_value(objective)(params)
        new_params, new_state = _update(optimizer, params, grads, state, rate, step_number)
        return (value.reshape(1), *new_params, *new_state)

    return step


def export_step(step: Callable[..., tuple], io: StepIO, example: list[np.ndarray]) -> onnx.ModelProto:
    """make_fx + torch.onnx (dynamo, unoptimised) → an opset-18 ONNX model with the contract's names."""
    import torch
    import torch._decomp
    from torch.fx.experimental.proxy_tensor import make_fx

    args = tuple(torch.from_numpy(np.array(a, copy=True)) for a in example)
    try:
        with silenced(*_LOGGERS):
            traced = make_fx(step, decomposition_table=decompositions())(*args)
            program = torch.onnx.export(
                traced,
                args,
                dynamo=True,
                optimize=False,
                opset_version=STEP_OPSET,
                verbose=False,
                input_names=io.inputs,
                output_names=io.outputs,
                external_data=False,
            )
    except Exception as error:
        raise ExportError(f"the training step could not be exported: {one_line(error)}") from None
    model = program.model_proto
    _plain(model)
    got = [value.name for value in model.graph.input]
    if got != io.inputs:
        raise ExportError(f"the exported training step has inputs {got}, expected {io.inputs}")
    return model


def _plain(model: onnx.ModelProto) -> None:
    """Constant nodes → initializers, CastLike of a constant → the cast constant, of the same type → Identity.

    ONNX.js has neither Constant (after the opset drop) nor CastLike nor Cast.
    """
    from onnx import numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in [*inferred.graph.value_info, *inferred.graph.input]}
    types.update({init.name: init.data_type for init in model.graph.initializer})
    kept = []
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(node.attribute[0].t), node.output[0]))
            for entry in node.attribute:
                if entry.name == "value":
                    types[node.output[0]] = entry.t.data_type
            continue
        kept.append(node)
    initializers = {init.name: init for init in model.graph.initializer}
    for node in kept:
        if node.op_type != "CastLike":
            continue
        target = types.get(node.input[1]) or onnx.TensorProto.FLOAT  # the step computes in float32
        if node.input[0] in initializers:
            value = numpy_helper.to_array(initializers[node.input[0]])
            dtype = onnx.helper.tensor_dtype_to_np_dtype(target)
            model.graph.initializer.append(numpy_helper.from_array(value.astype(dtype), node.output[0]))
            node.op_type = "Dropped"
        elif types.get(node.input[0]) == target:
            node.op_type = "Identity"
            del node.input[1:]
    kept = [node for node in kept if node.op_type != "Dropped"]
    del model.graph.node[:]
    model.graph.node.extend(kept)


def example_args(
    io: StepIO, cut: dict[str, np.ndarray], targets: list[np.ndarray], params: list[np.ndarray], optimizer: Optimizer
) -> list[np.ndarray]:
    """Inputs in the step's order: a first step from the initial parameters (state zero)."""
    rows = targets[0].shape[0]  # the batch; a cut tensor may be time-major (an LSTM input)
    fixed: list[Any] = [np.ones(rows, np.float32), np.array([optimizer.learning_rate], np.float32)]
    if io.needs_step:
        fixed.append(np.array([1.0], np.float32))
    state = [np.zeros_like(p) for _ in optimizer.state_names for p in params]
    return [*(cut[name] for name in io.cut), *targets, *fixed, *params, *state]
