"""Backward rules that torch.onnx cannot export, written as ops it can: a decomposition table for make_fx.

`aten.convolution_backward` has no ONNX function (STACK_FACTS "Training as an ONNX graph"). The
input's gradient of a convolution is the transposed convolution of the output's gradient (and
the other way round for a transposed one); the weight's gradient is a convolution of the input
with the output's gradient, batch and channel axes swapped and stride and dilation exchanged
(one per group), cropped to the kernel; the bias's gradient is a sum. torch._decomp has no
decomposition of it that stays in exportable ops, hence this one. The per-op gradient tests
(tests/export/train/test_layer_gradients.py) check it against finite differences in float64.
"""

from __future__ import annotations

from typing import Any, Callable


def _weight_grad(inputs: Any, grad: Any, kernel: list[int], stride: list[int], padding: list[int], dilation: list[int], groups: int) -> Any:
    """∂/∂W of conv(inputs, W) given the output's gradient: [grad channels, inputs channels / groups, *kernel]."""
    import torch

    spatial = len(kernel)
    per_in, per_out = inputs.shape[1] // groups, grad.shape[1] // groups
    found = []
    for group in range(groups):
        x = inputs[:, group * per_in : (group + 1) * per_in].transpose(0, 1)  # [in, B, *S]
        g = grad[:, group * per_out : (group + 1) * per_out].transpose(0, 1)  # [out, B, *T]
        w = torch.ops.aten.convolution.default(x, g, None, dilation, padding, stride, False, [0] * spatial, 1)
        crop = (slice(None), slice(None), *(slice(0, k) for k in kernel))
        found.append(w[crop].transpose(0, 1))  # [out, in, *K]
    return found[0] if groups == 1 else torch.cat(found, dim=0)


def convolution_backward(
    grad_output: Any,
    inputs: Any,
    weight: Any,
    bias_sizes: Any,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    transposed: bool,
    output_padding: list[int],
    groups: int,
    output_mask: list[bool],
) -> tuple[Any, Any, Any]:
    import torch

    spatial = weight.dim() - 2
    kernel = list(weight.shape[2:])
    grad_input = grad_weight = grad_bias = None
    if output_mask[0]:
        if transposed:
            grad_input = torch.ops.aten.convolution.default(
                grad_output, weight, None, stride, padding, dilation, False, [0] * spatial, groups
            )
        else:
            extra = [
                inputs.shape[2 + i] - ((grad_output.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (kernel[i] - 1) + 1)
                for i in range(spatial)
            ]
            grad_input = torch.ops.aten.convolution.default(grad_output, weight, None, stride, padding, dilation, True, extra, groups)
    if output_mask[1]:
        if transposed:  # convT(·, W) is the adjoint of conv(·, W): the roles of input and output swap
            grad_weight = _weight_grad(grad_output, inputs, kernel, stride, padding, dilation, groups)
        else:
            grad_weight = _weight_grad(inputs, grad_output, kernel, stride, padding, dilation, groups)
    if output_mask[2]:
        grad_bias = grad_output.sum(dim=[0, *range(2, grad_output.dim())])
    return grad_input, grad_weight, grad_bias


def decompositions() -> dict[Any, Callable[..., Any]]:
    """torch's core ATen decompositions plus the rules above."""
    import torch
    import torch._decomp

    table = dict(torch._decomp.core_aten_decompositions())
    table[torch.ops.aten.convolution_backward.default] = convolution_backward
    return table
