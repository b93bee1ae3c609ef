"""The model zoo and the data sets: registries of plug-ins, their config sections and builders.

Depends only on `hardware` (the plug-in registry); knows nothing of training methods or sweeps.
"""

from zoo.config import (
    DataConfig,
    ModelConfig,
    build_backbone,
    build_data,
    build_model,
    data_shape,
    load_dataset,
)
from zoo.datasets import DATASETS, DataSet, DataSplits
from zoo.models import MODELS, Model, StagedModel

__all__ = [
    "DATASETS",
    "MODELS",
    "DataConfig",
    "DataSet",
    "DataSplits",
    "Model",
    "ModelConfig",
    "StagedModel",
    "build_backbone",
    "build_data",
    "build_model",
    "data_shape",
    "load_dataset",
]
