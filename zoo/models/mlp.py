"""A multilayer perceptron on the flattened input."""

from __future__ import annotations

from typing import Literal

from torch import nn

from zoo.models.base import MODELS, Model, StagedModel


@MODELS.add
class MLP(Model):
    """Flatten -> `depth` x (Linear(hidden) -> ReLU) -> Linear(num_classes).

    Stages `hidden1` .. `hidden{depth}` (outputs (hidden,)); all of them are default taps.
    """

    name: Literal["mlp"] = "mlp"
    hidden: int = 256
    """Width of every hidden layer."""
    depth: int = 2
    """Number of hidden layers."""

    def build(self, in_channels: int, image_size: int, num_classes: int) -> StagedModel:
        hidden, depth = self.hidden, self.depth
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
