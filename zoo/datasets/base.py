"""Data sets as train / validation / test splits behind one registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.data import Dataset

from hardware.registry import Registry


@dataclass(frozen=True)
class DataSplits:
    """Three disjoint splits with a fixed, seeded assignment, and what a model needs to fit them."""

    train: Dataset
    val: Dataset
    test: Dataset
    in_channels: int
    image_size: int  # height == width; for flat inputs the side of the square they came from
    num_classes: int


DatasetLoader = Callable[..., DataSplits]
"""``loader(root, download, augment, val_fraction, seed, **options) -> DataSplits``; `seed` fixes the split."""

DATASETS: Registry[DatasetLoader] = Registry("data set")
