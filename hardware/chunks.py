"""The evaluation data in chunks sized to the cache (the loop path of `hardware.engine`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hardware.layout import images_to

Batches = list[tuple[Tensor, Tensor]]

CHUNK_BYTES = 4 * 2**20
"""The loop path runs the data in chunks whose largest activation is about this size (CPU: a share of
the cache). ResNet-20 on 32x32 then runs 64 images per forward instead of the loader's 256, about 1.2x
faster on one core (bench/mc_eval.py); the digits LeNet runs all 360 test images in one forward."""


def chunk_images(model: nn.Module, x: Tensor) -> int:
    """How many images of `x`'s shape make a chunk of CHUNK_BYTES in the model's largest activation."""
    sizes: list[int] = []
    leaves = [m for m in model.modules() if not list(m.children())]

    def record(_module: nn.Module, _inputs: object, out: object) -> None:
        if isinstance(out, Tensor):
            sizes.append(out.numel() * out.element_size())

    hooks = [m.register_forward_hook(record) for m in leaves]
    try:
        model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return max(1, CHUNK_BYTES // max(sizes, default=1))


def rechunk(model: nn.Module, batches: Batches, images: int | None, fmt: torch.memory_format | None) -> Batches:
    """The data as chunks of `images` (None: by CHUNK_BYTES), views of one tensor in `fmt`: results per
    image do not depend on the chunking, only the speed does."""
    if not batches:
        return batches
    x = torch.cat([x for x, _ in batches])
    x, y = images_to(x, x.device, fmt), torch.cat([y for _, y in batches])
    size = images or chunk_images(model, x)
    return list(zip(x.split(size), y.split(size), strict=True))
