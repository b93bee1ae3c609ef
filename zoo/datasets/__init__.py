"""Data sets: one `DataSet` plug-in per member (its fields are its options), registered in `DATASETS`."""

from zoo.datasets import digits, synthetic, torchvision_sets  # noqa: F401  (registers the members)
from zoo.datasets.base import DATASETS, DataSet, DataSplits

__all__ = ["DATASETS", "DataSet", "DataSplits"]
