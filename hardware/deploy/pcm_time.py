"""PCM read at several times after programming: aihwkit's accuracy-vs-time view of drift."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from hardware.curve import CurvePoint
from hardware.deploy.base import DEPLOY_SETTINGS, DeploySetting, DrawPlan, build_noise, noise_key
from hardware.engine import Prepared
from hardware.noise.base import NoiseModel

SECOND, HOUR, DAY = 1.0, 3600.0, 86400.0
MONTH, YEAR = 30 * DAY, 365 * DAY
DURATIONS = (("y", YEAR), ("d", DAY), ("h", HOUR), ("min", 60.0), ("s", SECOND))


@DEPLOY_SETTINGS.add
class PcmTime(DeploySetting):
    r"""Accuracy vs t, the seconds between programming and inference, of a drifting crossbar (default
    the `pcm_1h` preset: aihwkit's PCMLikeNoiseModel at sigma = 1, see `hardware.noise.crossbar`):

        g(t) = g_prog ((t0 + t) / t0)^(-nu),  t0 = 20 s,  nu ~ nu(g) per device,
        read noise std ∝ |g(t)| sqrt(ln((t0 + t + t_read) / (2 t_read))),

    with aihwkit's global drift compensation w~ *= mean|W_prog| / mean|w~| on or off
    (`drift_compensation`). Draw k is the same devices at every t (programming noise, drift
    exponents and read-noise z all come from `draw_generator(seed, k)` in a fixed order), so a
    curve follows one chip over time. The axis is logarithmic (`auc` is over log10 t).
    """

    name: Literal["pcm_time"] = "pcm_time"
    axis: ClassVar[str] = "t"
    log_axis: ClassVar[bool] = True
    noise: dict[str, Any] = Field(default_factory=lambda: {"preset": "pcm_1h"})
    """A drifting crossbar, ``{preset: NAME, **overrides}`` or ``{name: crossbar, ...}``, without
    t_inference and drift_compensation (this setting's)."""
    drift_compensation: bool = True
    """aihwkit's global drift compensation (off: the raw drifted conductances are read)."""
    values: list[float] = Field(default_factory=lambda: [SECOND, HOUR, DAY, MONTH, YEAR])
    """Seconds after programming (default 1 s, 1 h, 1 d, 30 d, 365 d)."""

    @field_validator("noise")
    @classmethod
    def _drifting_crossbar(cls, spec: dict[str, Any]) -> dict[str, Any]:
        for own in ("t_inference", "drift_compensation"):
            if own in spec:
                raise ValueError(f"{own} is a field of this setting, not of its `noise`")
        noise = build_noise(spec)
        if getattr(noise, "drift", "none") == "none":
            raise ValueError(f"needs a crossbar with drift (got {noise_key(spec)!r} without drift)")
        return spec

    def noise_at(self, t: float) -> NoiseModel:
        """The crossbar read `t` seconds after programming."""
        return build_noise({**self.noise, "t_inference": t, "drift_compensation": self.drift_compensation})

    @property
    def unit(self) -> str:
        return "s after programming" + ("" if self.drift_compensation else ", no drift compensation")

    def format_value(self, x: float) -> str:
        """Seconds in the largest unit that fits: 1 s, 1 h, 1 d, 30 d, 1 y."""
        for unit, seconds in DURATIONS:
            if x >= seconds:
                return f"{x / seconds:.3g} {unit}"
        return f"{x:.3g} s"

    @property
    def default_label(self) -> str:
        base = noise_key(self.noise).removesuffix("_1h").removesuffix("_1d")
        return base + ("" if self.drift_compensation else "_nocomp")

    def points(self, prepared: Prepared, plan: DrawPlan) -> list[CurvePoint]:
        points = []
        for t in self.values:
            noise = self.noise_at(t)
            curve = prepared.curve(noise, [noise.sigma], **plan.curve_args())
            points.append(dataclasses.replace(curve.points[0], scale=t))
        return points
