"""Deployment settings (one chip each, with its own axis and unit), the targeted weight attack, and
flatness. Importing the package registers every setting with `DEPLOY_SETTINGS`."""

from hardware.deploy.attack import WeightAttack, analog_weights, weight_attack
from hardware.deploy.base import (
    DEPLOY_SETTINGS,
    DeploySetting,
    build_noise,
    deploy_setting,
    deploy_settings,
    format_setting_table,
    setting_names,
)
from hardware.deploy.flatness import Flatness, hessian_max_eigenvalue
from hardware.deploy.pcm_time import PcmTime
from hardware.deploy.sigma import SigmaSweep, sigma_unit

__all__ = [
    "DEPLOY_SETTINGS",
    "DeploySetting",
    "Flatness",
    "PcmTime",
    "SigmaSweep",
    "WeightAttack",
    "analog_weights",
    "build_noise",
    "deploy_setting",
    "deploy_settings",
    "format_setting_table",
    "hessian_max_eigenvalue",
    "setting_names",
    "sigma_unit",
    "weight_attack",
]
