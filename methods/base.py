"""The Method interface: (model, batch, training noise) -> loss, logits and named terms."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from hardware.noise.base import NoiseModel
from hardware.registry import Plugin, PluginRegistry

if TYPE_CHECKING:
    from methods.train import TrainContext


@dataclass
class StepOutput:
    """What one training step of a method produces; the loop backpropagates `loss`."""

    loss: torch.Tensor  # scalar
    logits: torch.Tensor  # (B, classes), for the training accuracy
    terms: dict[str, float] = field(default_factory=dict)  # named loss terms, for logging


class Method(Plugin):
    """A training method. Its pydantic fields are its hyperparameters (the paper's defaults).

    A method never steps the optimizer and never logs: it returns tensors; the training loop does
    the rest, so every method runs in the same loop unchanged.
    """

    def prepare(self, model: nn.Module) -> nn.Module:
        """Called once before training: may add modules (exits, dropout) to the model."""
        return model

    @abstractmethod
    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: NoiseModel) -> StepOutput:
        """Loss of one batch `x` (B, ...) with labels `y` (B,) under the training noise model."""

    def passes(self) -> tuple[int, int]:
        """(forward, backward) passes through the network per training step, in theory (for the cost
        bench: a forward costs 1 unit, a backward 2); passes of methods without a declaration: (1, 1)."""
        return (1, 1)

    def after_training(self, model: nn.Module, ctx: TrainContext) -> nn.Module:
        """Called once after the last epoch: strip what must not be deployed, or run a second phase."""
        return model

    def architecture(self, model: nn.Module) -> dict:
        """What, beyond the config, rebuilds the deployed model (e.g. where modules were inserted)."""
        return {}

    def rebuild(self, model: nn.Module, architecture: dict) -> nn.Module:
        """Turn a freshly built backbone into the deployed architecture, before loading its weights."""
        return model


METHODS: PluginRegistry[Method] = PluginRegistry("method")
