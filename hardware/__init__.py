"""The simulated chip: noise models, applying them to a network, Monte Carlo robustness evaluation.

The public API of the package; methods/, sweep/ and bench/ import from here only.
"""

from hardware.apply import ANALOG_LAYERS, analog_layers, noisy_layers, noisy_parameters, noisy_weights
from hardware.curve import CurvePoint, RobustnessCurve, format_curve_table, paired_differences
from hardware.deploy import (
    DEPLOY_SETTINGS,
    DeploySetting,
    Flatness,
    deploy_setting,
    deploy_settings,
    format_setting_table,
    hessian_max_eigenvalue,
)
from hardware.deployed import perturbed
from hardware.engine import DEFAULT_PATH, Prepared, accuracy, prepare, robustness_curve
from hardware.layout import fast_memory_format, images_to, in_layout_of, memory_format
from hardware.noise import NOISE_MODELS, Crossbar, NoiseModel, noise_model, noise_names
from hardware.noise.base import StandardForm, one_line
from hardware.presets import PRESETS, preset, preset_params
from hardware.registry import Plugin, PluginRegistry, Registry
from hardware.seeds import derive_seed, draw_generator, draw_seed
from hardware.statistics import area_under_curve, control_adjusted, mean_ci95, mean_std, t_quantile

__all__ = [
    "ANALOG_LAYERS",
    "DEFAULT_PATH",
    "DEPLOY_SETTINGS",
    "NOISE_MODELS",
    "PRESETS",
    "Crossbar",
    "CurvePoint",
    "DeploySetting",
    "Flatness",
    "NoiseModel",
    "Plugin",
    "PluginRegistry",
    "Prepared",
    "Registry",
    "RobustnessCurve",
    "StandardForm",
    "accuracy",
    "analog_layers",
    "area_under_curve",
    "control_adjusted",
    "deploy_setting",
    "deploy_settings",
    "derive_seed",
    "draw_generator",
    "draw_seed",
    "fast_memory_format",
    "format_curve_table",
    "format_setting_table",
    "hessian_max_eigenvalue",
    "images_to",
    "in_layout_of",
    "mean_ci95",
    "mean_std",
    "memory_format",
    "noise_model",
    "noise_names",
    "noisy_layers",
    "noisy_parameters",
    "noisy_weights",
    "one_line",
    "paired_differences",
    "perturbed",
    "prepare",
    "preset",
    "preset_params",
    "robustness_curve",
    "t_quantile",
]
