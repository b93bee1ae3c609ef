"""A noise model or preset swept over its noise scale sigma: today's robustness curve as a setting."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from hardware.curve import CurvePoint
from hardware.deploy.base import DEPLOY_SETTINGS, DeploySetting, DrawPlan, build_noise, noise_key
from hardware.engine import Prepared
from hardware.noise.base import NoiseModel

SIGMA_UNITS: dict[str, str] = {
    "additive": "σ of max|W| per layer",
    "multiplicative": "relative σ, w(1+σz)",
    "lognormal": "σ of ln w, w·exp(σz)",
}
"""What sigma means, per noise model; `crossbar` depends on its programming noise (`sigma_unit`)."""


def sigma_unit(noise: NoiseModel) -> str:
    """The unit of `noise`'s sigma axis."""
    if noise.name in SIGMA_UNITS:
        return SIGMA_UNITS[noise.name]
    if getattr(noise, "prog_noise", None) == "pcm":
        return "× aihwkit PCM programming/read noise"
    if noise.name == "crossbar":
        return "device σ, fraction of g_max−g_min"
    return "noise scale σ"


@DEPLOY_SETTINGS.add
class SigmaSweep(DeploySetting):
    """Accuracy vs sigma of one noise model or preset (`noise`, without sigma): exactly
    `robustness_curve(model, loader, noise, values, ...)` (`Prepared.curve`), e.g. ``{name: sigma, noise: {name:
    multiplicative}}`` or the NFT RRAM device σ ``{name: sigma, noise: {preset: nft_rram}}``."""

    name: Literal["sigma"] = "sigma"
    axis: ClassVar[str] = "sigma"
    noise: dict[str, Any] = Field(default_factory=lambda: {"name": "additive"})
    """The noise model, ``{name: NAME, **fields}`` or ``{preset: NAME, **overrides}``; its sigma is the axis."""
    values: list[float] = Field(default_factory=lambda: [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4])
    """The sigma values (default: the main job's additive scales)."""

    @field_validator("noise")
    @classmethod
    def _buildable(cls, spec: dict[str, Any]) -> dict[str, Any]:
        if "sigma" in spec:
            raise ValueError("sigma is the axis of this setting: give it in `values`, not in `noise`")
        build_noise(spec)
        return spec

    def noise_model(self) -> NoiseModel:
        return build_noise(self.noise)

    @property
    def unit(self) -> str:
        return sigma_unit(self.noise_model())

    @property
    def default_label(self) -> str:
        return noise_key(self.noise)

    def points(self, prepared: Prepared, plan: DrawPlan) -> list[CurvePoint]:
        return prepared.curve(self.noise_model(), self.values, **plan.curve_args()).points
