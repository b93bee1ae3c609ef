"""Applying a noise model to a network: which weights are noisy, training and evaluation contexts,
and the generators of common random numbers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor, nn

from hardware.layout import in_layout_of
from hardware.noise.base import NoiseModel, Sampler

ANALOG_LAYERS: tuple[type[nn.Module], ...] = (nn.modules.conv._ConvNd, nn.Linear)
"""Layers whose `weight` lives on the crossbar; biases, normalization and the rest stay digital."""


def noisy_layers(model: nn.Module, noise: NoiseModel) -> list[tuple[str, nn.Module]]:
    """(name, module) of the conv and linear layers whose weight is noisy, in module order."""
    layers, seen = [], set()
    for name, module in model.named_modules():
        weight = module._parameters.get("weight") if isinstance(module, ANALOG_LAYERS) else None
        if weight is not None and id(weight) not in seen:  # a shared weight is one set of devices
            seen.add(id(weight))
            layers.append((name, module))
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


class Deployed:
    """The noisy weights of a deployed model with a snapshot of their clean values (the fast path of
    evaluation: each draw overwrites the weights in place, `restore` puts the exact clean bits back)."""

    def __init__(self, model: nn.Module, noise: NoiseModel) -> None:
        self.params = noisy_parameters(model, noise)
        # Noise is drawn in the standard (contiguous) layout whatever the weights' memory format, so a
        # draw is the same numbers for a channels_last model; those draws pass through a scratch tensor.
        self.clean = {name: p.detach().clone(memory_format=torch.contiguous_format) for name, p in self.params.items()}
        self._targets = {name: p.detach() for name, p in self.params.items()}  # share the storage
        self._scratch = {
            name: torch.empty_like(w) for name, w in self.clean.items() if not self._targets[name].is_contiguous()
        }

    def samplers(self, noise: NoiseModel) -> dict[str, Sampler]:
        """One sampler per noisy weight, in module order (draws with one generator seed match)."""
        return {name: noise.sampler(w) for name, w in self.clean.items()}

    @torch.no_grad()
    def write(self, samplers: dict[str, Sampler], generator: torch.Generator | None) -> None:
        """One draw written in place into the weights."""
        for name, draw in samplers.items():
            scratch = self._scratch.get(name)
            if scratch is None:
                draw(self._targets[name], generator)
            else:
                draw(scratch, generator)
                self._targets[name].copy_(scratch)

    @torch.no_grad()
    def restore(self) -> None:
        for name, p in self._targets.items():
            p.copy_(self.clean[name])


@contextmanager
def perturbed(model: nn.Module, noise: NoiseModel, generator: torch.Generator | None = None) -> Iterator[None]:
    """EVALUATION: one noisy draw written in place into the weights (no grad inside); the exact
    clean weights are restored on exit, also when the body raises."""
    deployed = Deployed(model, noise)
    try:
        with torch.no_grad():
            deployed.write(deployed.samplers(noise), generator)
            yield
    finally:
        deployed.restore()


@lru_cache(maxsize=4096)  # every scale and every evaluation asks for the same few (seed, k): hash once
def draw_seed(seed: int, k: int) -> int:
    """A well-mixed 64-bit seed for draw `k` of an evaluation with seed `seed` (both >= 0)."""
    if seed < 0 or k < 0:
        raise ValueError(f"seed and draw index must be >= 0 (got seed={seed}, k={k})")
    return int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint64)[0])


def draw_generator(seed: int, k: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Common random numbers: the generator of draw k, the same for every scale, model and method."""
    return torch.Generator(device=device).manual_seed(draw_seed(seed, k))
