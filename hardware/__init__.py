"""The simulated chip: noise models, applying them to a network, Monte Carlo robustness evaluation."""

from hardware.apply import (
    ANALOG_LAYERS,
    draw_generator,
    noisy_layers,
    noisy_parameters,
    noisy_weights,
    perturbed,
)
from hardware.evaluate import (
    CurvePoint,
    RobustnessCurve,
    accuracy,
    format_curve_table,
    robustness_curve,
    t_quantile,
)
from hardware.layout import fast_memory_format, images_to, in_layout_of
from hardware.noise import NOISE_MODELS, Crossbar, NoiseModel, noise_model, noise_names
from hardware.noise.base import one_line
from hardware.presets import PRESETS, preset
from hardware.registry import Plugin, PluginRegistry, Registry

__all__ = [
    "ANALOG_LAYERS",
    "NOISE_MODELS",
    "PRESETS",
    "Crossbar",
    "CurvePoint",
    "NoiseModel",
    "Plugin",
    "PluginRegistry",
    "Registry",
    "RobustnessCurve",
    "accuracy",
    "draw_generator",
    "fast_memory_format",
    "images_to",
    "in_layout_of",
    "format_curve_table",
    "noise_model",
    "noise_names",
    "noisy_layers",
    "noisy_parameters",
    "noisy_weights",
    "one_line",
    "perturbed",
    "preset",
    "robustness_curve",
    "t_quantile",
]
