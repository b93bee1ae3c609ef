"""Forward noise training (Joshi et al., Nat. Commun. 2020): cross-entropy on a noisy forward."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

import hardware
from hardware import NoiseModel
from methods.base import METHODS, Method, StepOutput


@METHODS.add
class NoiseInjection(Method):
    """L = CE(f(x; w + stopgrad(w~ - w)), y), w~ a fresh draw of the training noise model per batch.

    The gradient reaches the clean weights w (straight through the noise); BatchNorm running
    statistics are collected under noise, as on the chip. At sigma 0 this is the baseline.
    """

    name: Literal["noise_injection"] = "noise_injection"

    @property
    def trains_under_noise(self) -> bool:
        return True

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: NoiseModel) -> StepOutput:
        with hardware.noisy_weights(model, noise):
            logits = model(x)  # (B, classes)
        loss = F.cross_entropy(logits, y)
        return StepOutput(loss, logits, {"ce": loss.item()})
