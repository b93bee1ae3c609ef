"""ResNet-18 for small images: torchvision's architecture with a 3x3 stride-1 stem and no max-pool.

Built from the CIFAR ResNets' `BasicBlock` with option-B (1x1 conv + BN) shortcuts, which makes it
layer for layer torchvision's `resnet18` (a test copies torchvision's weights in and compares
outputs) while the model zoo stays independent of torchvision.
"""

from __future__ import annotations

from typing import Literal

from zoo.models.base import MODELS, Model, StagedModel
from zoo.models.resnet_cifar import build_resnet


@MODELS.add
class ResNet18(Model):
    """Stem conv3x3(64) -> `layer1`..`layer4` (2 blocks each, 64/128/256/512 channels) -> pool -> linear.

    ~11.17M parameters for 10 classes; all four groups are default taps.
    """

    name: Literal["resnet18"] = "resnet18"

    def build(self, in_channels: int, image_size: int, num_classes: int) -> StagedModel:
        return build_resnet(in_channels, num_classes, widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), shortcut="B")
