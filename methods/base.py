"""The Method interface: (model, batch, training noise) -> loss, logits and named terms."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from hardware import NoiseModel, Plugin, PluginRegistry
from methods.train_config import TrainConfig


@dataclass
class StepOutput:
    """What one training step of a method produces; the loop backpropagates `loss`."""

    loss: torch.Tensor  # scalar
    logits: torch.Tensor  # (B, classes), for the training accuracy
    terms: dict[str, float] = field(default_factory=dict)  # named loss terms, for logging


@dataclass
class TrainContext:
    """What a method's `after_training` phase may use (CorrectNet trains its compensation here)."""

    cfg: TrainConfig
    noise: NoiseModel
    train_loader: DataLoader
    val_loader: DataLoader
    device: torch.device
    seed: int
    eval_seed: int


@dataclass
class Trained:
    """What `Method.after_training` returns: the deployable model and what the method found out."""

    model: nn.Module
    summary: dict[str, float] = field(default_factory=dict)
    """Scalars for a tracker, named `<method>/<quantity>` (e.g. `correctnet/added_params`)."""
    details: dict[str, Any] = field(default_factory=dict)
    """Everything else the method wants to hand back (e.g. CorrectNet's search history)."""


class Method(Plugin):
    """A training method. Its pydantic fields are its hyperparameters (the paper's defaults).

    A method never steps the optimizer and never logs: it returns tensors; the training loop does
    the rest, so every method runs in the same loop unchanged.
    """

    @property
    def trains_under_noise(self) -> bool:
        """Whether training draws from the training noise model (then `noise.sigma` is one of its knobs)."""
        return False

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

    def after_training(self, model: nn.Module, ctx: TrainContext) -> Trained:
        """Called once after the last epoch: strip what must not be deployed, or run a second phase.
        The method's results travel in the returned `Trained`, never in the method (a config object)."""
        return Trained(model)

    def architecture(self, model: nn.Module) -> dict:
        """What, beyond the config, rebuilds the deployed model (e.g. where modules were inserted)."""
        return {}

    def rebuild(self, model: nn.Module, architecture: dict) -> nn.Module:
        """Turn a freshly built backbone into the deployed architecture, before loading its weights."""
        return model


METHODS: PluginRegistry[Method] = PluginRegistry("method")
