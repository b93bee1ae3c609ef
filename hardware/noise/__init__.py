"""Noise models: one module per member, all registered in `NOISE_MODELS`."""

from hardware.noise import additive, crossbar, lognormal, multiplicative  # noqa: F401  (registration)
from hardware.noise.base import NOISE_MODELS, NoiseModel, noise_model, noise_names
from hardware.noise.crossbar import Crossbar

__all__ = ["NOISE_MODELS", "Crossbar", "NoiseModel", "noise_model", "noise_names"]
