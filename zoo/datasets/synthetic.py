"""Random images with learnable labels, for benchmarks and tests: no files, any shape, instant."""

from __future__ import annotations

from typing import Literal

import torch
from torch.utils.data import TensorDataset

from zoo.datasets.base import DATASETS, DataSet, DataSplits

TEACHER_SEED = 0
"""Seed of the labelling function: fixed, so every split seed poses the same task."""


@DATASETS.add
class Synthetic(DataSet):
    """Inputs x ~ N(0, 1) of `shape` (C, H, H) drawn from `seed`; label y = argmax_k <w_k, x> for a fixed
    random teacher with unit-norm columns w_k, so a linear model can reach 100 % and classes are
    about balanced. The sizes are explicit, so `val_fraction`, `root`, `download` and `augment` are
    unused."""

    name: Literal["synthetic"] = "synthetic"
    shape: list[int] = [3, 32, 32]
    """(channels, size, size) of one input."""
    num_classes: int = 10
    """Number of classes (>= 2)."""
    train_size: int = 512
    """Items in the train split."""
    val_size: int = 128
    """Items in the validation split."""
    test_size: int = 128
    """Items in the test split."""

    def load(self, root: str, download: bool, augment: bool, val_fraction: float, seed: int) -> DataSplits:
        shape, num_classes = self.shape, self.num_classes
        train_size, val_size, test_size = self.train_size, self.val_size, self.test_size
        shape = tuple(shape)
        if len(shape) != 3 or shape[1] != shape[2] or min(shape) < 1:
            raise ValueError(f"synthetic: shape must be (channels, size, size) of positive ints, got {shape}")
        if num_classes < 2:
            raise ValueError(f"synthetic: num_classes must be >= 2, got {num_classes}")
        sizes = {"train_size": train_size, "val_size": val_size, "test_size": test_size}
        for field, size in sizes.items():
            if size < 1:
                raise ValueError(f"synthetic: {field} must be >= 1, got {size}")

        dim = shape[0] * shape[1] * shape[2]
        teacher = torch.randn(dim, num_classes, generator=torch.Generator().manual_seed(TEACHER_SEED))
        teacher = teacher / teacher.norm(dim=0)  # (D, K), unit columns
        n = train_size + val_size + test_size
        x = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))  # (N, D)
        y = (x @ teacher).argmax(dim=1)  # (N,)
        x = x.view(n, *shape)  # (N, C, H, W)

        parts = list(sizes.values())
        train, val, test = (TensorDataset(xs, ys) for xs, ys in zip(x.split(parts), y.split(parts), strict=True))
        return DataSplits(train, val, test, in_channels=shape[0], image_size=shape[1], num_classes=num_classes)
