"""The model zoo. Importing the package registers every model with `MODELS`.

Every model is ``builder(in_channels, image_size, num_classes, *, **options) -> StagedModel``:
stem -> named stages (tap them with `forward_features`) -> head.
"""

from methods.models import lenet, mlp, resnet18, resnet_cifar, vgg8  # noqa: F401  (registers the models)
from methods.models.base import MODELS, ModelBuilder, StagedModel, build_model


def names() -> list[str]:
    """Names of the registered models."""
    return MODELS.names()


__all__ = ["MODELS", "ModelBuilder", "StagedModel", "build_model", "names"]
