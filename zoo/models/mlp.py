"""A multilayer perceptron on the flattened input."""

from __future__ import annotations

from torch import nn

from methods.models.base import MODELS, StagedModel


@MODELS.register("mlp")
def mlp(
    in_channels: int, image_size: int, num_classes: int, *, hidden: int = 256, depth: int = 2
) -> StagedModel:
    """Flatten -> `depth` x (Linear(hidden) -> ReLU) -> Linear(num_classes).

    Stages `hidden1` .. `hidden{depth}` (outputs (hidden,)); all of them are default taps.
    """
    if hidden < 1:
        raise ValueError(f"mlp: hidden must be >= 1, got {hidden}")
    if depth < 1:
        raise ValueError(f"mlp: depth must be >= 1, got {depth}")
    width = in_channels * image_size * image_size
    stages: dict[str, nn.Module] = {}
    for i in range(depth):
        stages[f"hidden{i + 1}"] = nn.Sequential(nn.Linear(width, hidden), nn.ReLU())
        width = hidden
    return StagedModel(nn.Flatten(), stages, nn.Linear(width, num_classes), num_classes)
