"""CorrectNet's error-compensation modules: small residual corrections after chosen stages of a
`StagedModel`, identity at initialization.

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


class CompensatedStage(nn.Module):
    """A stage followed by its compensation module; `spec` rebuilds it."""

    def __init__(self, stage: nn.Module, spec: Spec) -> None:
        super().__init__()
        self.stage = stage
        self.compensation = build_compensation(spec)
        self.spec = dict(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.compensation(self.stage(x))


def spec_for(shape: tuple[int, ...], rank: int) -> Spec:
    """The module for a stage output of shape (C, H, W) (1x1 conv) or (D,) (rank-r linear)."""
    if len(shape) == 3:
        return {"kind": "conv", "width": shape[0]}
    if len(shape) == 1:
        return {"kind": "linear", "width": shape[0], "rank": min(rank, shape[0])}
    raise ValueError(f"compensation: stage outputs of shape {shape} are not supported; allowed: (C, H, W), (D,)")


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
    """Wrap each named stage of the StagedModel `model` in a `CompensatedStage` (in place)."""
    unknown = set(placement) - set(model.stages.keys())
    if unknown:
        raise ValueError(f"compensation: unknown stage(s) {sorted(unknown)}; allowed: {', '.join(model.stages)}")
    device = next(model.parameters()).device
    for name, spec in placement.items():
        if isinstance(model.stages[name], CompensatedStage):
            raise ValueError(f"compensation: stage {name!r} already has a compensation module")
        model.stages[name] = CompensatedStage(model.stages[name], spec).to(device)
    return model


def strip(model: nn.Module) -> nn.Module:
    """Remove every compensation module (in place): the bare backbone again."""
    for name, stage in list(model.stages.items()):
        if isinstance(stage, CompensatedStage):
            model.stages[name] = stage.stage
    return model


def placement_of(model: nn.Module) -> dict[str, Spec]:
    """Stage name -> spec of every compensation module in `model`, in stage order."""
    return {n: dict(s.spec) for n, s in model.stages.items() if isinstance(s, CompensatedStage)}


def compensation_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for s in model.stages.values() if isinstance(s, CompensatedStage) for p in s.compensation.parameters()]
