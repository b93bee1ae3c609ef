"""Data sets as train / validation / test splits behind one registry of `DataSet` plug-ins."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

from torch.utils.data import Dataset

from hardware import Plugin, PluginRegistry


@dataclass(frozen=True)
class DataSplits:
    """Three disjoint splits with a fixed, seeded assignment, and what a model needs to fit them."""

    train: Dataset
    val: Dataset
    test: Dataset
    in_channels: int
    image_size: int  # height == width; for flat inputs the side of the square they came from
    num_classes: int


class DataSet(Plugin):
    """A member of the data set registry: its pydantic fields are its own options (`data.options`)."""

    @abstractmethod
    def load(self, root: str, download: bool, augment: bool, val_fraction: float, seed: int) -> DataSplits:
        """The three splits; `seed` fixes which items go where. `root`, `download` (torchvision sets),
        `augment` and `val_fraction` are the config's common data keys; members may ignore them."""


DATASETS: PluginRegistry[DataSet] = PluginRegistry("data set")
