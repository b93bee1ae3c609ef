"""Tiny models and batches shared by the method tests (8x8 single-channel inputs, 10 classes)."""

from __future__ import annotations

import torch

from zoo import StagedModel, build_model


def tiny_lenet(seed: int = 0, channels: tuple[int, ...] = (4, 8), hidden: tuple[int, ...] = (16,)) -> StagedModel:
    """A LeNet for 8x8 digits, initialised from `seed`."""
    torch.manual_seed(seed)
    return build_model("lenet", 1, 8, 10, channels=channels, hidden=hidden)


def random_batch(n: int = 32, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """n random 1x8x8 images and labels, the same for a seed."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)  # (n,1,8,8), (n,)
