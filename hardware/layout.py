"""Memory layout of weights and images: conv nets run in channels_last where its kernels are faster.

The layout never changes a number: noise is drawn in the standard layout and written into the
weights' own, and every helper here keeps values bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

FAST_MEMORY_FORMAT: dict[str, torch.memory_format] = {"cpu": torch.channels_last}
"""Per device type, the memory format conv nets (2-d convolutions) run in, for training
(`train.memory_format: auto`) and for the loop path of the evaluation. CPU, one thread: oneDNN's NHWC
kernels made a training step 1.25x (digits LeNet) and 1.09x (ResNet-20) faster, and clean inference
2.3x and 1.6x (bench/mc_eval.py prints both layouts; bench/method_cost.py trains in this one)."""


def fast_memory_format(model: nn.Module, device: torch.device) -> torch.memory_format | None:
    """The memory format to run `model` in on `device` (FAST_MEMORY_FORMAT), None to keep its own."""
    has_conv2d = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return FAST_MEMORY_FORMAT.get(device.type) if has_conv2d else None


@contextmanager
def memory_format(model: nn.Module, fmt: torch.memory_format | None) -> Iterator[None]:
    """Inside, the 4-d parameters and buffers of `model` are in `fmt` (values unchanged); on exit each
    gets its own tensor back, so what is written to the weights inside (noise draws) is dropped. For
    evaluation, not training. A no-op for None."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.dim() == 4] if fmt is not None else []
    before = [(t, t.data) for t in tensors]
    try:
        for t in tensors:
            t.data = t.data.contiguous(memory_format=fmt)
        yield
    finally:
        for t, data in before:
            t.data = data  # the original tensors, untouched: the exact bits and layout come back


def images_to(x: Tensor, device: torch.device, fmt: torch.memory_format | None) -> Tensor:
    """A batch of inputs on `device`, images (4-d) in `fmt`."""
    if fmt is not None and x.dim() == 4:
        return x.to(device, memory_format=fmt)
    return x.to(device)


def in_layout_of(tensor: Tensor, like: Tensor) -> Tensor:
    """`tensor` with the strides of `like` (differentiably). Elementwise results lose a channels_last
    layout where it is ambiguous (one input channel), and the convolution then leaves its fast path."""
    if tensor.stride() == like.stride():
        return tensor
    return torch.empty_like(like).copy_(tensor)
