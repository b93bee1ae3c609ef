"""Applying a noise model to a network: which weights are analog / noisy, and the noisy training forward."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from hardware.layout import in_layout_of
from hardware.noise.base import NoiseModel

ANALOG_LAYERS: tuple[type[nn.Module], ...] = (nn.modules.conv._ConvNd, nn.Linear)
"""Layers whose `weight` lives on the crossbar; biases, normalization and the rest stay digital."""


def analog_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every conv and linear layer with a weight, in module order (a weight shared by
    several modules counts once: one set of devices)."""
    layers, seen = [], set()
    for name, module in model.named_modules():
        weight = module._parameters.get("weight") if isinstance(module, ANALOG_LAYERS) else None
        if weight is not None and id(weight) not in seen:
            seen.add(id(weight))
            layers.append((name, module))
    return layers


def noisy_layers(model: nn.Module, noise: NoiseModel) -> list[tuple[str, nn.Module]]:
    """(name, module) of the analog layers whose weight is noisy under `noise`, in module order."""
    layers = analog_layers(model)
    if noise.digital_first:
        layers = layers[1:]
    if noise.digital_last:
        layers = layers[:-1]
    return layers


def noisy_parameters(model: nn.Module, noise: NoiseModel) -> dict[str, nn.Parameter]:
    """Qualified name -> weight of every noisy layer, in module order."""
    return {(f"{name}." if name else "") + "weight": m.weight for name, m in noisy_layers(model, noise)}


@contextmanager
def noisy_weights(model: nn.Module, noise: NoiseModel, generator: torch.Generator | None = None) -> Iterator[None]:
    """TRAINING: inside, every forward (any method of `model` or of a module wrapping it) sees
    w_noisy = w + (w~ - w).detach(), w~ one fresh sample per entry, so d loss / d w_noisy reaches the
    clean w. Not re-entrant; do not step an optimizer inside. A no-op when the noise is the identity.
    """
    if noise.is_identity:
        yield
        return
    swapped: list[tuple[nn.Module, Tensor]] = []
    try:
        for _, module in noisy_layers(model, noise):
            w = module._parameters["weight"]
            noise_delta = noise.sample(w, 1, generator)[0] - w.detach()  # (*w.shape), no grad
            # what torch.nn.utils.stateless does: a non-leaf tensor in place of the Parameter
            module._parameters["weight"] = in_layout_of(w + noise_delta, w)
            swapped.append((module, w))
        yield
    finally:
        for module, w in swapped:
            module._parameters["weight"] = w
