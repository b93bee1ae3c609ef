"""VGG-8 as used by negative feedback training (Qin et al. 2023): 6 conv + 2 FC layers."""

from __future__ import annotations

from typing import Literal

from torch import nn

from zoo.models.base import MODELS, Model, StagedModel


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


@MODELS.add
class VGG8(Model):
    """Three blocks of (conv3x3-BN-ReLU) x 2 -> maxpool 2, then FC(hidden) -> ReLU -> FC(num_classes).

    Stages `block1` .. `block3` (outputs (c, H/2^i, W/2^i); the default taps) and `fc` (output
    (hidden,)). Channels follow NFT's VGG8 (64, 128 | 256, 256 | 512, 512); the DNN+NeuroSim VGG8
    is ``channels=(128, 128, 256, 256, 512, 512)``.
    """

    name: Literal["vgg8"] = "vgg8"
    channels: list[int] = [64, 128, 256, 256, 512, 512]
    """Output channels of the six convolutions."""
    hidden: int = 1024
    """Width of the hidden fully connected layer."""

    def build(self, in_channels: int, image_size: int, num_classes: int) -> StagedModel:
        channels, hidden = tuple(self.channels), self.hidden
        if len(channels) != 6 or min(channels) < 1:
            raise ValueError(f"vgg8: channels must be 6 ints >= 1, got {list(channels)}")
        if hidden < 1:
            raise ValueError(f"vgg8: hidden must be >= 1, got {hidden}")
        if image_size < 8:
            raise ValueError(f"vgg8: image_size must be >= 8 (three 2x2 poolings), got {image_size}")

        stages: dict[str, nn.Module] = {}
        c = in_channels
        for i in range(3):
            a, b = channels[2 * i], channels[2 * i + 1]
            stages[f"block{i + 1}"] = nn.Sequential(*_conv_bn_relu(c, a), *_conv_bn_relu(a, b), nn.MaxPool2d(2))
            c = b
        side = image_size // 8
        stages["fc"] = nn.Sequential(nn.Flatten(), nn.Linear(c * side * side, hidden), nn.ReLU())
        taps = ["block1", "block2", "block3"]
        return StagedModel(nn.Identity(), stages, nn.Linear(hidden, num_classes), num_classes, default_taps=taps)
