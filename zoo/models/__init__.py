"""The model zoo. Importing the package registers every model with `MODELS`.

A model is a `Model` plug-in (its fields are its options) whose
``build(in_channels, image_size, num_classes) -> StagedModel`` makes the network:
stem -> named stages (tap them with `forward_features`) -> head.
"""

from zoo.models import lenet, mlp, resnet18, resnet_cifar, vgg8  # noqa: F401  (registers the models)
from zoo.models.base import MODELS, Model, StagedModel

__all__ = ["MODELS", "Model", "StagedModel"]
