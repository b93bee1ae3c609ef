"""The CIFAR ResNets of He et al. 2016 (ResNet-20/32/56), and the residual pieces ResNet-18 reuses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from zoo.models.base import MODELS, Model, StagedModel

Shortcut = Literal["A", "B"]


class PadShortcut(nn.Module):
    """He et al.'s option A: subsample by `stride`, zero-pad the new channels; no parameters."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        extra = planes - in_planes
        self.pad = (0, 0, 0, 0, extra // 2, extra - extra // 2)  # (W, W, H, H, C, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, in_planes, ceil(H/s), ceil(W/s))
        return F.pad(x, self.pad)  # (B, planes, ceil(H/s), ceil(W/s))


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), two 3x3 convs.

    The shortcut is the identity unless the shape changes; then option A (`PadShortcut`) or
    option B (1x1 conv + BN projection, torchvision's `downsample`).
    """

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: Shortcut) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module
        if stride == 1 and in_planes == planes:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(in_planes, planes, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (B, planes, H/s, W/s)
        out = self.bn2(self.conv2(out))  # (B, planes, H/s, W/s)
        return F.relu(out + self.shortcut(x))


def build_resnet(
    in_channels: int, num_classes: int, widths: Sequence[int], blocks: Sequence[int], shortcut: Shortcut
) -> StagedModel:
    """Stem conv3x3(widths[0]) + BN + ReLU -> groups `layer1`.. of BasicBlocks (every group after the
    first halves the resolution) -> global average pool -> linear. All groups are default taps.

    Convs get He (Kaiming normal, fan-out) init as in He et al. and torchvision; BN starts at (1, 0).
    """
    stem = nn.Sequential(
        nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
    )
    stages: dict[str, nn.Module] = {}
    c = widths[0]
    for i, (width, n) in enumerate(zip(widths, blocks, strict=True)):
        stride = 1 if i == 0 else 2
        rest = [BasicBlock(width, width, 1, shortcut) for _ in range(n - 1)]
        stages[f"layer{i + 1}"] = nn.Sequential(BasicBlock(c, width, stride, shortcut), *rest)
        c = width
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
    model = StagedModel(stem, stages, head, num_classes)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


def _cifar_resnet(depth: int, in_channels: int, num_classes: int) -> StagedModel:
    n = (depth - 2) // 6  # basic blocks per group: depth = 6n + 2
    return build_resnet(in_channels, num_classes, widths=(16, 32, 64), blocks=(n, n, n), shortcut="A")


class CifarResNet(Model):
    """He et al.'s CIFAR ResNet of depth 6n + 2: 3 x n blocks, 16/32/64 channels, option-A shortcuts."""

    def build(self, in_channels: int, image_size: int, num_classes: int) -> StagedModel:
        return _cifar_resnet(int(self.name.removeprefix("resnet")), in_channels, num_classes)


@MODELS.add
class ResNet20(CifarResNet):
    """ResNet-20 (3 x 3 blocks, 16/32/64 channels, option-A shortcuts); ~0.27M parameters."""

    name: Literal["resnet20"] = "resnet20"


@MODELS.add
class ResNet32(CifarResNet):
    """ResNet-32 (3 x 5 blocks, 16/32/64 channels, option-A shortcuts); ~0.46M parameters."""

    name: Literal["resnet32"] = "resnet32"


@MODELS.add
class ResNet56(CifarResNet):
    """ResNet-56 (3 x 9 blocks, 16/32/64 channels, option-A shortcuts); ~0.85M parameters."""

    name: Literal["resnet56"] = "resnet56"
