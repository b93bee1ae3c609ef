"""scikit-learn's bundled 8x8 handwritten digits: 1797 images, no download, all in memory.

Small enough that a whole sweep of LeNet/MLP trials runs on a laptop CPU in minutes.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch.utils.data import TensorDataset

from zoo.datasets.base import DATASETS, DataSet, DataSplits


@DATASETS.add
class Digits(DataSet):
    """Stratified seeded split (default 70 / 10 / 20 %), images (1, 8, 8) in [0, 1] then standardized
    with the train split's mean and std. `root`, `download` and `augment` have no effect here."""

    name: Literal["digits"] = "digits"
    test_fraction: float = 0.2
    """Fraction of the whole set held out for the test split."""

    def load(self, root: str, download: bool, augment: bool, val_fraction: float, seed: int) -> DataSplits:
        test_fraction = self.test_fraction
        if not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
            raise ValueError(
                f"digits: test_fraction must be in (0, 1) with val_fraction + test_fraction < 1, "
                f"got test_fraction={test_fraction}, val_fraction={val_fraction}"
            )
        from sklearn.datasets import load_digits  # here: importing scikit-learn costs ~1 core-second
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        images = bunch.images.astype(np.float32)[:, None] / 16.0  # (1797, 1, 8, 8), pixel values 0..16
        labels = bunch.target.astype(np.int64)  # (1797,)

        index = np.arange(len(labels))
        rest, test = train_test_split(index, test_size=test_fraction, stratify=labels, random_state=seed)
        # val_fraction is of the whole set, so of the remainder it is val / (1 - test)
        train, val = train_test_split(
            rest, test_size=val_fraction / (1 - test_fraction), stratify=labels[rest], random_state=seed
        )

        mean, std = images[train].mean(), images[train].std()

        def split(idx: np.ndarray) -> TensorDataset:
            x = torch.from_numpy((images[idx] - mean) / std)  # (n, 1, 8, 8)
            return TensorDataset(x, torch.from_numpy(labels[idx]))

        return DataSplits(split(train), split(val), split(test), in_channels=1, image_size=8, num_classes=10)
