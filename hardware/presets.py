"""Named noise settings from the papers: `noise: {preset: NAME, ...overrides}` in a config."""

from __future__ import annotations

from typing import Any

from hardware.noise.base import NoiseModel, noise_model
from hardware.registry import Registry

PRESETS: Registry[dict[str, Any]] = Registry("noise preset")
"""Preset name -> the noise model's fields (`name` included)."""


def pcm_preset(t_inference: float) -> dict[str, Any]:
    """aihwkit's PCMLikeNoiseModel (programming polynomial, PCM drift, 1/f read noise) with global drift
    compensation, on analog differential pairs with g_max = 25 uS, read `t_inference` seconds after
    programming; sigma scales the programming and read noise (1 = aihwkit)."""
    return {
        "name": "crossbar",
        "sigma": 1.0,
        "g_max": 25.0,
        "prog_noise": "pcm",
        "drift": "pcm",
        "read_noise": "pcm",
        "t_inference": t_inference,
        "drift_compensation": True,
    }


# Hou et al., MLST 2024: additive noise at scale 0.2 of the layer's largest weight.
PRESETS.register("consistency_additive")({"name": "additive", "sigma": 0.2})
# Qin et al. (NFT), arXiv 2305.14561: 8-bit weights over four 2-bit RRAM devices, Gaussian device
# variation sigma relative to a device's range, sign kept digitally. Equal to additive noise of scale
# 0.778 sigma on the 8-bit quantized weights.
PRESETS.register("nft_rram")(
    {
        "name": "crossbar",
        "sigma": 0.1,
        "bits": 8,
        "bits_per_device": 2,
        "differential": False,
        "clip_negative": False,
        "g_min": 0.0,
        "g_max": 1.0,
    }
)
# aihwkit's PCM model read one hour / one day after programming.
PRESETS.register("pcm_1h")(pcm_preset(t_inference=3600.0))
PRESETS.register("pcm_1d")(pcm_preset(t_inference=86400.0))


def preset_params(name: str, **overrides: Any) -> dict[str, Any]:
    """The fields of preset `name` (`name` = the noise model) with some overridden; an unknown preset
    raises a one-line ValueError naming the allowed ones."""
    return {**PRESETS.get(name), **overrides}


def preset(name: str, **overrides: Any) -> NoiseModel:
    """The noise model of preset `name`, with some fields overridden."""
    params = preset_params(name, **overrides)
    return noise_model(params.pop("name"), **params)
