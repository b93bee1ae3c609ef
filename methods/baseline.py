"""Plain empirical risk minimization: cross-entropy on the clean weights."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from hardware import NoiseModel
from methods.base import METHODS, Method, StepOutput


@METHODS.add
class Baseline(Method):
    """CE(f(x; w), y). The training noise model is ignored."""

    name: Literal["baseline"] = "baseline"

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: NoiseModel) -> StepOutput:
        logits = model(x)  # (B, classes)
        loss = F.cross_entropy(logits, y)
        return StepOutput(loss, logits, {"ce": loss.item()})
