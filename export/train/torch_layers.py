"""ONNX layers with parameters and the shape/activation ops around them, as torch functions (for torch_graph).

Covered: Conv and ConvTranspose (1-/2-/3-D; groups, explicit or SAME/VALID pads, stride,
dilation, output_padding), MaxPool (via torch's max_pool, whose backward exports),
AveragePool (as a depthwise convolution with a constant kernel, so its backward is the
convolution's: `avg_pool*_backward` has no ONNX function), GlobalAveragePool/GlobalMaxPool,
BatchNormalization (inference form: running mean and variance are constants), LayerNormalization,
Gather (an embedding table, or shape plumbing), Concat, Split, Slice (positive steps), Pad
(constant/reflect/edge), Clip, HardSigmoid, Gelu, Erf, a few element-wise and reduce ops, the Shape/Cast/Expand/
ConstantOfShape plumbing converters put before a recurrent layer's initial state, and the
ONNX LSTM and GRU ops (default activations, any direction, no peepholes, no clip, full-length
sequences) unrolled over time; Loop bodies are run by torch_control.py. Not covered, each one
error naming it: Scan (a recurrent form some converters emit), MaxPool's indices output, AveragePool with ceil_mode,
negative Slice steps, LSTM peepholes/clip/custom activations, recurrent layout=1.

Why not onnx2torch (1.5.15, the last release, 2024-08): it has no LSTM, GRU, Loop or Scan
converter, and it turns each node into an `nn.Module` holding its own copy of the initializers
(nn.Conv2d's weight), so the gradient with respect to an initializer *by name*, which the
contract is keyed by, would need a per-op map back anyway.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import onnx

from ..errors import UnsupportedModelError


def attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for entry in node.attribute:
        if entry.name == name:
            value = onnx.helper.get_attribute_value(entry)
            return value.decode() if isinstance(value, bytes) else value
    return default


def ints(value: Any) -> list[int]:
    import torch

    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    return [int(v) for v in np.asarray(value).reshape(-1)]


def refuse(node: onnx.NodeProto, what: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"{node.op_type} node {node.name!r}: {what} is not supported by the training step")


def _pads(node: onnx.NodeProto, sizes: list[int], kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    """[begin…, end…] per spatial axis, from `pads` or `auto_pad`."""
    spatial = len(kernel)
    mode = attr(node, "auto_pad", "NOTSET")
    if mode in ("NOTSET", ""):
        return list(attr(node, "pads", [0] * 2 * spatial))
    if mode == "VALID":
        return [0] * 2 * spatial
    begins, ends = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if mode == "SAME_UPPER" else large)
        ends.append(large if mode == "SAME_UPPER" else small)
    return begins + ends


def _torch_pad(pads: list[int]) -> list[int]:
    """ONNX [b0, b1, …, e0, e1, …] → torch.nn.functional.pad's [b_last, e_last, …, b0, e0]."""
    spatial = len(pads) // 2
    found = []
    for axis in reversed(range(spatial)):
        found += [pads[axis], pads[spatial + axis]]
    return found


def _window(node: onnx.NodeProto, x: Any, kernel: list[int]) -> tuple[list[int], list[int], list[int]]:
    spatial = len(kernel)
    strides = list(attr(node, "strides", [1] * spatial))
    dilations = list(attr(node, "dilations", [1] * spatial))
    return strides, dilations, _pads(node, list(x.shape[2:]), kernel, strides, dilations)


def conv(node, tail, x, w, b=None):
    import torch

    kernel = list(w.shape[2:])
    strides, dilations, pads = _window(node, x, kernel)
    if any(pads):
        x = torch.nn.functional.pad(x, _torch_pad(pads))
    return torch.ops.aten.convolution.default(
        x, w, b, strides, [0] * len(kernel), dilations, False, [0] * len(kernel), attr(node, "group", 1)
    )


def conv_transpose(node, tail, x, w, b=None):
    import torch

    if attr(node, "output_shape") is not None or attr(node, "auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise refuse(node, "output_shape / auto_pad")
    kernel = list(w.shape[2:])
    spatial = len(kernel)
    strides = list(attr(node, "strides", [1] * spatial))
    dilations = list(attr(node, "dilations", [1] * spatial))
    pads = list(attr(node, "pads", [0] * 2 * spatial))
    extra = list(attr(node, "output_padding", [0] * spatial))
    y = torch.ops.aten.convolution.default(x, w, b, strides, [0] * spatial, dilations, True, extra, attr(node, "group", 1))
    crop = (slice(None), slice(None), *(slice(pads[i], y.shape[2 + i] - pads[spatial + i]) for i in range(spatial)))
    return y[crop]


def max_pool(node, tail, x):
    import torch

    if len(node.output) > 1 and node.output[1]:
        raise refuse(node, "the indices output")
    kernel = list(attr(node, "kernel_shape"))
    strides, dilations, pads = _window(node, x, kernel)
    if any(pads):
        x = torch.nn.functional.pad(x, _torch_pad(pads), value=float("-inf"))
    pool = {1: torch.nn.functional.max_pool1d, 2: torch.nn.functional.max_pool2d, 3: torch.nn.functional.max_pool3d}
    return pool[len(kernel)](x, kernel, strides, 0, dilations, ceil_mode=bool(attr(node, "ceil_mode", 0)))


def average_pool(node, tail, x):
    """A depthwise convolution with 1/k weights (a ones-mask divisor when pads are not counted)."""
    import torch

    if attr(node, "ceil_mode", 0):
        raise refuse(node, "ceil_mode")
    kernel = list(attr(node, "kernel_shape"))
    strides, dilations, pads = _window(node, x, kernel)
    channels, spatial = x.shape[1], len(kernel)
    ones = torch.ones([channels, 1, *kernel], dtype=x.dtype)
    padded = torch.nn.functional.pad(x, _torch_pad(pads)) if any(pads) else x
    summed = torch.ops.aten.convolution.default(padded, ones, None, strides, [0] * spatial, dilations, False, [0] * spatial, channels)
    if not any(pads) or attr(node, "count_include_pad", 0):
        return summed / float(np.prod(kernel))
    mask = torch.nn.functional.pad(torch.ones([1, 1, *x.shape[2:]], dtype=x.dtype), _torch_pad(pads))
    counts = torch.ops.aten.convolution.default(mask, ones[:1], None, strides, [0] * spatial, dilations, False, [0] * spatial, 1)
    return summed / counts


def batch_norm(node, tail, x, scale, bias, mean, var):
    if attr(node, "training_mode", 0):
        raise refuse(node, "training_mode=1")
    shape = [1, -1] + [1] * (x.dim() - 2)
    inverse = (var + attr(node, "epsilon", 1e-5)).rsqrt()
    return (x - mean.reshape(shape)) * (inverse * scale).reshape(shape) + bias.reshape(shape)


def layer_norm(node, tail, x, scale, bias=None):
    if len(node.output) > 1 and any(node.output[1:]):
        raise refuse(node, "the Mean / InvStdDev outputs")
    axis = attr(node, "axis", -1) % x.dim()
    dims = list(range(axis, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    centred = x - mean
    variance = (centred * centred).mean(dim=dims, keepdim=True)
    y = centred * (variance + attr(node, "epsilon", 1e-5)).rsqrt() * scale
    return y if bias is None else y + bias


def gather(node, tail, data, indices):
    import torch

    axis = attr(node, "axis", 0) % data.dim()
    index = indices.to(torch.int64)
    index = torch.where(index < 0, index + data.shape[axis], index)
    picked = torch.index_select(data, axis, index.reshape(-1))
    return picked.reshape([*data.shape[:axis], *indices.shape, *data.shape[axis + 1 :]])


def split(node, tail, x, sizes=None):
    axis = attr(node, "axis", 0) % x.dim()
    parts = ints(sizes) if sizes is not None else attr(node, "split")
    if parts is None:
        count = attr(node, "num_outputs", len(node.output))
        size = -(-x.shape[axis] // count)
        parts = [min(size, x.shape[axis] - i * size) for i in range(count)]
    return tuple(x.split(list(parts), dim=axis))


def slice_(node, tail, data, starts=None, ends=None, axes=None, steps=None):
    if starts is None:  # opset < 10: attributes
        starts, ends, axes = attr(node, "starts"), attr(node, "ends"), attr(node, "axes")
    starts, ends = ints(starts), ints(ends)
    axes = ints(axes) if axes is not None else list(range(len(starts)))
    steps = ints(steps) if steps is not None else [1] * len(starts)
    index = [slice(None)] * data.dim()
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if step < 1:
            raise refuse(node, "a negative step")
        size = data.shape[axis % data.dim()]
        start = min(max(start + size if start < 0 else start, 0), size)
        end = min(max(end + size if end < 0 else end, 0), size)
        index[axis % data.dim()] = slice(start, end, step)
    return data[tuple(index)]


def pad(node, tail, x, pads=None, value=None, axes=None):
    import torch

    mode = attr(node, "mode", "constant")
    amounts = ints(pads) if pads is not None else list(attr(node, "pads"))
    if axes is not None:
        chosen = [a % x.dim() for a in ints(axes)]
        full = [0] * 2 * x.dim()
        for i, axis in enumerate(chosen):
            full[axis], full[x.dim() + axis] = amounts[i], amounts[len(chosen) + i]
        amounts = full
    if any(v < 0 for v in amounts):
        raise refuse(node, "negative pads")
    torch_mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(mode)
    if torch_mode is None:
        raise refuse(node, f"mode {mode!r}")
    wanted = _torch_pad(amounts)
    while len(wanted) > 2 and not any(wanted[-2:]):  # torch pads the last axes only: drop unpadded leading ones
        wanted = wanted[:-2]
    if torch_mode == "constant":
        fill = float(value.reshape(-1)[0]) if value is not None else float(attr(node, "value", 0.0))
        return torch.nn.functional.pad(x, wanted, value=fill)
    return torch.nn.functional.pad(x, wanted, mode=torch_mode)


def clip(node, tail, x, low=None, high=None):
    import torch

    low = attr(node, "min") if low is None and tail.opset < 11 else low
    high = attr(node, "max") if high is None and tail.opset < 11 else high
    if low is not None:
        x = torch.maximum(x, torch.as_tensor(low, dtype=x.dtype))
    if high is not None:
        x = torch.minimum(x, torch.as_tensor(high, dtype=x.dtype))
    return x


def _reduce(function: Callable[..., Any]) -> Callable[..., Any]:
    def reduce(node, tail, x, axes=None):
        axes = ints(axes) if axes is not None else attr(node, "axes")
        keep = bool(attr(node, "keepdims", 1))
        if not axes:
            if attr(node, "noop_with_empty_axes", 0):
                return x
            axes = list(range(x.dim()))
        return function(x, dim=[a % x.dim() for a in axes], keepdim=keep)

    return reduce


def _rnn_inputs(node, x, sequence_lens) -> Any:
    if sequence_lens is not None and int(sequence_lens.min()) != int(sequence_lens.max()):
        raise refuse(node, "sequences of different lengths")
    if attr(node, "clip") is not None:
        raise refuse(node, "clip")
    if attr(node, "layout", 0):  # onnxruntime refuses it too, so nothing could check the translation
        raise refuse(node, "layout=1 (batch first)")
    return x


def _rnn_outputs(per_direction: list[tuple[list, list]]):
    """per direction: (hidden states in time order, [last h, (last c)]) → ONNX's Y, Y_h(, Y_c)."""
    import torch

    y = torch.stack([torch.stack(states) for states, _ in per_direction], dim=1)  # [T, D, B, H]
    finals = [torch.stack([last[i] for _, last in per_direction]) for i in range(len(per_direction[0][1]))]
    return (y, *finals)


def _default_activations(node, defaults: list[str]) -> None:
    given = attr(node, "activations")
    names = [a.decode() if isinstance(a, bytes) else a for a in given] if given is not None else None
    if names is not None and names not in (defaults, defaults * 2):
        raise refuse(node, f"activations {names}")


def _directions(node) -> list[bool]:
    direction = attr(node, "direction", "forward")
    return {"forward": [False], "reverse": [True], "bidirectional": [False, True]}[direction]


def lstm(node, tail, x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None, peepholes=None):
    """ONNX LSTM (gates i, o, f, c), unrolled over time."""
    import torch

    if peepholes is not None or attr(node, "input_forget", 0):
        raise refuse(node, "peepholes / input_forget")
    _default_activations(node, ["Sigmoid", "Tanh", "Tanh"])
    sequence = _rnn_inputs(node, x, sequence_lens)
    hidden = w.shape[1] // 4
    batch = sequence.shape[1]
    results = []
    for d, backwards in enumerate(_directions(node)):
        h = initial_h[d] if initial_h is not None else torch.zeros(batch, hidden, dtype=x.dtype)
        c = initial_c[d] if initial_c is not None else torch.zeros(batch, hidden, dtype=x.dtype)
        bias = (b[d, : 4 * hidden] + b[d, 4 * hidden :]) if b is not None else 0
        states = []
        steps = range(sequence.shape[0] - 1, -1, -1) if backwards else range(sequence.shape[0])
        for t in steps:
            gates = sequence[t] @ w[d].T + h @ r[d].T + bias
            i, o, f, g = gates.split(hidden, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            states.append(h)
        if backwards:
            states.reverse()
        results.append((states, [h, c]))
    return _rnn_outputs(results)


def gru(node, tail, x, w, r, b=None, sequence_lens=None, initial_h=None):
    """ONNX GRU (gates z, r, h; linear_before_reset either way), unrolled over time."""
    import torch

    _default_activations(node, ["Sigmoid", "Tanh"])
    sequence = _rnn_inputs(node, x, sequence_lens)
    hidden = w.shape[1] // 3
    batch = sequence.shape[1]
    before_reset = attr(node, "linear_before_reset", 0)
    results = []
    for d, backwards in enumerate(_directions(node)):
        h = initial_h[d] if initial_h is not None else torch.zeros(batch, hidden, dtype=x.dtype)
        wb, rb = (b[d, : 3 * hidden], b[d, 3 * hidden :]) if b is not None else (0, 0)
        wz, wr, wh = w[d].split(hidden)
        rz, rr, rh = r[d].split(hidden)
        wbz, wbr, wbh = wb.split(hidden) if b is not None else (0, 0, 0)
        rbz, rbr, rbh = rb.split(hidden) if b is not None else (0, 0, 0)
        states = []
        steps = range(sequence.shape[0] - 1, -1, -1) if backwards else range(sequence.shape[0])
        for t in steps:
            xt = sequence[t]
            z = torch.sigmoid(xt @ wz.T + h @ rz.T + wbz + rbz)
            reset = torch.sigmoid(xt @ wr.T + h @ rr.T + wbr + rbr)
            if before_reset:
                candidate = torch.tanh(xt @ wh.T + reset * (h @ rh.T + rbh) + wbh)
            else:
                candidate = torch.tanh(xt @ wh.T + (reset * h) @ rh.T + rbh + wbh)
            h = (1 - z) * candidate + z * h
            states.append(h)
        if backwards:
            states.reverse()
        results.append((states, [h]))
    return _rnn_outputs(results)


def shape(node, tail, x):
    import torch

    dims = list(x.shape)[attr(node, "start", 0) : attr(node, "end", None)]
    return torch.tensor(dims, dtype=torch.int64)


def cast(node, tail, x):
    import torch
    from onnx import helper

    dtype = torch.from_numpy(np.zeros(0, helper.tensor_dtype_to_np_dtype(attr(node, "to")))).dtype
    return x.to(dtype)


def constant_of_shape(node, tail, dims):
    import torch
    from onnx import numpy_helper

    value = attr(node, "value")
    fill = np.array(numpy_helper.to_array(value)).reshape(-1) if value is not None else np.zeros(1, np.float32)
    return torch.full(ints(dims), fill[0].item(), dtype=torch.from_numpy(fill).dtype)


def ops() -> dict[str, Callable[..., Any]]:
    """op type → f(node, tail, *inputs) returning a tensor, or a tuple for several outputs."""
    import torch

    F = torch.nn.functional
    return {
        "Conv": conv,
        "ConvTranspose": conv_transpose,
        "MaxPool": max_pool,
        "AveragePool": average_pool,
        "GlobalAveragePool": lambda node, tail, x: x.mean(dim=list(range(2, x.dim())), keepdim=True),
        "GlobalMaxPool": lambda node, tail, x: x.amax(dim=list(range(2, x.dim())), keepdim=True),
        "BatchNormalization": batch_norm,
        "LayerNormalization": layer_norm,
        "Gather": gather,
        "Concat": lambda node, tail, *xs: torch.cat(list(xs), dim=attr(node, "axis")),
        "Split": split,
        "Slice": slice_,
        "Pad": pad,
        "Clip": clip,
        "HardSigmoid": lambda node, tail, x: torch.clamp(attr(node, "alpha", 0.2) * x + attr(node, "beta", 0.5), 0, 1),
        "Gelu": lambda node, tail, x: F.gelu(x, approximate=attr(node, "approximate", "none")),
        "Erf": lambda node, tail, x: torch.erf(x),
        "Neg": lambda node, tail, x: -x,
        "Sqrt": lambda node, tail, x: torch.sqrt(x),
        "Exp": lambda node, tail, x: torch.exp(x),
        "Pow": lambda node, tail, x, y: torch.pow(x, y),
        "Elu": lambda node, tail, x: F.elu(x, attr(node, "alpha", 1.0)),
        "Softplus": lambda node, tail, x: F.softplus(x),
        "ReduceMean": _reduce(torch.mean),
        "ReduceSum": _reduce(torch.sum),
        "Shape": shape,
        "Cast": cast,
        "ConstantOfShape": constant_of_shape,
        "Expand": lambda node, tail, x, dims: x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(ints(dims)))),
        "LSTM": lstm,
        "GRU": gru,
    }
