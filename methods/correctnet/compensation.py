"""CorrectNet's error-compensation modules: small residual corrections on the output of chosen
conv / linear layers (before their normalization and activation), identity at initialization.

They run DIGITALLY on the chip: their weights are plain Parameters used with F.conv2d / F.linear
inside modules that are not nn.Conv2d / nn.Linear, so `hardware.noisy_parameters` (which collects
the weights of `hardware.ANALOG_LAYERS`) never sees them and no noise model perturbs them. They are
part of the deployed model and count towards its parameters.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Spec = dict[str, Any]
"""How to build one module: {"kind": "conv", "width": C} or {"kind": "linear", "width": D, "rank": r}."""


class ConvCompensation(nn.Module):
    """y = h + conv1x1(h; W) + b on (B, C, H, W) features; W = 0, b = 0 at init (the identity)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(width, width, 1, 1))
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + F.conv2d(h, self.weight, self.bias)  # (B, C, H, W)


class LinearCompensation(nn.Module):
    """y = h + U (V h) + b on (B, D) features, rank r; U = 0, b = 0 at init (the identity), V random."""

    def __init__(self, width: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Parameter(torch.randn(rank, width) / math.sqrt(width))  # V: (r, D)
        self.up = nn.Parameter(torch.zeros(width, rank))  # U: (D, r)
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + F.linear(F.linear(h, self.down), self.up, self.bias)  # (B, D)


class CompensatedLayer(nn.Module):
    """An analog layer followed by its compensation module; `spec` rebuilds it."""

    def __init__(self, layer: nn.Module, spec: Spec) -> None:
        super().__init__()
        self.layer = layer
        self.compensation = build_compensation(spec)
        self.spec = dict(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.compensation(self.layer(x))


def spec_for(layer: nn.Module, rank: int) -> Spec:
    """The module after `layer`: a 1x1 conv after a Conv2d, a rank-r linear after a Linear."""
    if isinstance(layer, nn.Conv2d):
        return {"kind": "conv", "width": layer.out_channels}
    if isinstance(layer, nn.Linear):
        return {"kind": "linear", "width": layer.out_features, "rank": min(rank, layer.out_features)}
    raise ValueError(f"compensation: cannot follow a {type(layer).__name__}; allowed: Conv2d, Linear")


def build_compensation(spec: Spec) -> nn.Module:
    if spec["kind"] == "conv":
        return ConvCompensation(spec["width"])
    if spec["kind"] == "linear":
        return LinearCompensation(spec["width"], spec["rank"])
    raise ValueError(f"compensation: unknown kind {spec['kind']!r}; allowed: conv, linear")


def spec_parameters(spec: Spec) -> int:
    """Parameters the module of `spec` adds."""
    w = spec["width"]
    return w * w + w if spec["kind"] == "conv" else 2 * w * spec["rank"] + w


def insert(model: nn.Module, placement: dict[str, Spec]) -> nn.Module:
    """Wrap each named layer of `model` in a `CompensatedLayer` (in place; names as in named_modules)."""
    modules = dict(model.named_modules())
    device = next(model.parameters()).device
    for name, spec in placement.items():
        layer = modules.get(name)
        if layer is None or not name:
            raise ValueError(f"compensation: {name!r} is not a layer of the model")
        if isinstance(layer, CompensatedLayer):
            raise ValueError(f"compensation: layer {name!r} already has a compensation module")
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, CompensatedLayer(layer, spec).to(device))
    return model


def strip(model: nn.Module) -> nn.Module:
    """Remove every compensation module (in place): the bare backbone again."""
    for name in list(placement_of(model)):
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, model.get_submodule(name).layer)
    return model


def placement_of(model: nn.Module) -> dict[str, Spec]:
    """Layer name -> spec of every compensation module in `model`, in module order."""
    return {n: dict(m.spec) for n, m in model.named_modules() if isinstance(m, CompensatedLayer)}


def compensation_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for m in model.modules() if isinstance(m, CompensatedLayer) for p in m.compensation.parameters()]
