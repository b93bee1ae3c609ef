"""A simulated crossbar: weights -> conductances of devices -> device non-idealities -> weights."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from hardware.noise.base import NOISE_MODELS, NoiseModel, Sampler, standard_normal

PCM_PROG_COEFF = (0.26348, 1.9650, -1.1731)
"""aihwkit PCMLikeNoiseModel: programming-noise std (uS) as a polynomial of g / g_max, fitted at 25 uS."""
PCM_G_MAX_REFERENCE = 25.0


@dataclass
class Mapping:
    """One layer on the crossbar: what depends only on its clean weight."""

    g_target: Tensor
    """Programming targets, (P, S, *weight.shape)."""
    w_max: Tensor
    """max |w| of the layer (a scalar) or of each output channel (broadcastable to the weight)."""
    sign: Tensor | None
    """The sign of each weight when it is kept digitally (single-device mapping), else None."""
    slice_w: Tensor
    """Slice weights w_s, shaped to broadcast over (n, P, S, *weight.shape)."""


@NOISE_MODELS.add
class Crossbar(NoiseModel):
    r"""Each layer on a crossbar of devices with conductances in [g_min, g_max] (uS).

    Mapping (per layer, or per output channel with `per_channel`): x = w / max|W| in [-1, 1].
    With `bits`, |x| is quantized to the integer level q = round(|x| (2^bits - 1)); with
    `bits_per_device` = b < bits, q is sliced over S = bits / b devices,
    q = sum_s (2^b)^s d_s, d_s in [0, 2^b - 1] (the NFT paper's 8-bit weight over four 2-bit devices).
    Device s holds the level u_s = d_s / (2^b - 1) in [0, 1] as g_s = g_min + (g_max - g_min) u_s.
    `differential`: a pair (G+, G-) per slice, the positive part of x on G+, the negative on G-;
    otherwise one device holds |x| and the sign is applied digitally.

    Non-idealities, per device and draw, in this order (z ~ N(0, 1), independent):

    - programming: g_p = g + sigma * s_prog(g) * z, with s_prog = (g_max - g_min) (`constant`) or
      aihwkit's PCM polynomial s_prog = (c0 + c1 g/g_max + c2 (g/g_max)^2) g_max / 25 (`pcm`);
      clipped at 0 unless `clip_negative` is off;
    - drift at t = t0 + t_inference: g_d = g_p (t / t0)^(-nu), nu ~ |N(drift_nu, drift_nu_std)|
      (`constant`) or aihwkit's state-dependent nu(g) (`pcm`);
    - read noise: g_r = g_d + read_scale * sigma * s_read * z, s_read = (g_max - g_min)
      (`constant`) or aihwkit's accumulated 1/f noise |g_d| q_s(g_p) sqrt(ln((t + t_read) / (2 t_read)))
      (`pcm`);
    - faults: a device is stuck at g_min with probability p_stuck_off, at g_max with p_stuck_on.

    Back to weights: w~ = max|W| * sum_s w_s ((G+_s - G-_s) / (g_max - g_min)) with slice weights
    w_s = (2^b)^s (2^b - 1) / (2^bits - 1). Global drift compensation (aihwkit's
    GlobalDriftCompensation, whose read-out is mean |W|): w~ *= mean|W_p| / mean|w~|, with W_p the
    weights read right after programming (faults included, before drift and read noise).

    With sigma = 0, bits = None, no drift and no faults the mapping is the identity (up to rounding).
    With constant programming noise and no clipping, Std[w~ - w_q] = sigma max|W| sqrt(P sum_s w_s^2),
    P = 2 for a differential pair, 1 otherwise: 0.778 sigma max|W| for 8 bits over four 2-bit devices.
    """

    name: Literal["crossbar"] = "crossbar"
    g_min: float = Field(0.0, ge=0)
    """Lowest device conductance (uS), the OFF state."""
    g_max: float = Field(25.0, gt=0)
    """Highest device conductance (uS), the ON state; the largest |weight| maps here."""
    per_channel: bool = False
    """Scale each output channel by its own max |w| instead of the whole layer's."""
    differential: bool = True
    """Differential pair (G+, G-) per weight; False: one device holds |w|, the sign stays digital."""
    bits: int | None = Field(None, ge=1, le=16)
    """Quantize |w| to 2^bits levels (the weight to 2^(bits+1) - 1 signed levels); None: analog."""
    bits_per_device: int | None = Field(None, ge=1, le=16)
    """Bits per device when slicing a weight over bits / bits_per_device devices; None: no slicing."""
    prog_noise: Literal["constant", "pcm"] = "constant"
    """Programming-noise std: sigma * (g_max - g_min), or sigma * aihwkit's PCM polynomial of g."""
    clip_negative: bool = True
    """Clip conductances at 0 after noise (physical); off keeps the Gaussian abstraction of NFT."""
    drift: Literal["none", "constant", "pcm"] = "none"
    """Conductance drift g (t/t0)^-nu: none, nu ~ |N(drift_nu, drift_nu_std)|, or aihwkit's PCM nu(g)."""
    drift_nu: float = Field(0.05, ge=0)
    """Mean drift exponent of `drift: constant`."""
    drift_nu_std: float = Field(0.0, ge=0)
    """Device-to-device std of the drift exponent of `drift: constant`."""
    t_inference: float = Field(0.0, ge=0)
    """Seconds between the end of programming (t0) and inference; 0: no drift."""
    t0: float = Field(20.0, gt=0)
    """Seconds after programming of the reference read (drift is relative to it)."""
    drift_compensation: bool = True
    """Global drift compensation: rescale each layer so its mean |w| matches the one after programming."""
    read_noise: Literal["none", "constant", "pcm"] = "none"
    """Read noise std: read_scale * sigma * (g_max - g_min), or aihwkit's PCM 1/f noise at t."""
    read_scale: float = Field(1.0, ge=0)
    """Read-noise strength relative to the programming-noise scale sigma."""
    t_read: float = Field(250e-9, gt=0)
    """Duration of one read (s), a parameter of the PCM 1/f noise."""
    p_stuck_off: float = Field(0.0, ge=0, le=1)
    """Probability that a device is stuck at g_min."""
    p_stuck_on: float = Field(0.0, ge=0, le=1)
    """Probability that a device is stuck at g_max."""

    @model_validator(mode="after")
    def _consistent(self) -> Crossbar:
        if self.g_max <= self.g_min:
            raise ValueError(f"g_max must be greater than g_min (got g_min={self.g_min}, g_max={self.g_max})")
        if self.bits_per_device is not None:
            if self.bits is None or self.bits % self.bits_per_device:
                raise ValueError(
                    f"bits_per_device must divide bits (got bits={self.bits}, bits_per_device={self.bits_per_device})"
                )
        if self.p_stuck_off + self.p_stuck_on > 1:
            raise ValueError("p_stuck_off + p_stuck_on must be at most 1")
        return self

    # ----------------------------------------------------------------------------- properties

    @property
    def _drifts(self) -> bool:
        return self.drift != "none" and self.t_inference > 0

    @property
    def _faults(self) -> bool:
        return self.p_stuck_off > 0 or self.p_stuck_on > 0

    @property
    def is_identity(self) -> bool:
        return self.sigma == 0 and self.bits is None and not self._drifts and not self._faults

    @property
    def is_deterministic(self) -> bool:
        random_drift = self._drifts and (self.drift == "pcm" or self.drift_nu_std > 0)
        return self.sigma == 0 and not self._faults and not random_drift

    @property
    def slices(self) -> int:
        return self.bits // self.bits_per_device if self.bits_per_device else 1

    # ------------------------------------------------------------------------------- mapping

    def _scale(self, w: Tensor) -> Tensor:
        """max |w| per layer (a scalar) or per output channel (broadcastable to w); zero -> 1."""
        if self.per_channel and w.dim() > 1:
            w_max = w.abs().flatten(1).amax(1).view(-1, *([1] * (w.dim() - 1)))
        else:
            w_max = w.abs().max()
        return torch.where(w_max > 0, w_max, torch.ones_like(w_max))

    def _slice_weights(self, like: Tensor) -> Tensor:
        """w_s for each slice, summing to 1; shape (S,)."""
        if self.bits is None:
            return torch.ones(1, dtype=like.dtype, device=like.device)
        b = self.bits_per_device or self.bits
        top = 2**self.bits - 1
        weights = [2 ** (b * s) * (2**b - 1) / top for s in range(self.slices)]
        return torch.tensor(weights, dtype=like.dtype, device=like.device)

    def levels(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        """Device levels u in [0, 1], shape (P, S, *weight.shape), and the scale max|W|."""
        w = weight.detach()
        w_max = self._scale(w)
        x = w / w_max  # (*shape) in [-1, 1]
        mag = x.abs()
        if self.bits is None:
            u = mag.unsqueeze(0)  # (1, *shape)
        else:
            b = self.bits_per_device or self.bits
            q = torch.round(mag * (2**self.bits - 1))  # integer levels, exact in float32 up to 2^24
            digits = [torch.div(q, 2 ** (b * s), rounding_mode="floor") % 2**b for s in range(self.slices)]
            u = torch.stack(digits) / (2**b - 1)  # (S, *shape)
        if self.differential:
            u = torch.stack([u * (x > 0), u * (x < 0)])  # (2, S, *shape)
        else:
            u = u.unsqueeze(0)  # (1, S, *shape)
        return u, w_max

    def map(self, weight: Tensor) -> Mapping:
        """What depends only on the clean weight: target conductances and the way back to weights."""
        w = weight.detach()
        u, w_max = self.levels(w)
        shape = (1, 1, -1, *([1] * w.dim()))
        return Mapping(
            g_target=self.g_min + (self.g_max - self.g_min) * u,  # (P, S, *shape)
            w_max=w_max,
            sign=None if self.differential else torch.where(w < 0, -1.0, 1.0).to(w.dtype),
            slice_w=self._slice_weights(w).view(shape),
        )

    def conductances(self, weight: Tensor, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Device conductances at inference and right after programming, each (n, P, S, *weight.shape)."""
        return self._devices(self.map(weight).g_target, n, generator)

    def sample(self, weight: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        return self._sample(self.map(weight), n, generator)

    def sampler(self, weight: Tensor) -> Sampler:
        mapping = self.map(weight)

        def draw(out: Tensor, generator: torch.Generator | None) -> None:
            out.copy_(self._sample(mapping, 1, generator)[0])

        return draw

    def _sample(self, m: Mapping, n: int, generator: torch.Generator | None) -> Tensor:
        g, g_prog = self._devices(m.g_target, n, generator)
        w = self._read(g, m)  # (n, *shape)
        if self.drift_compensation and self._drifts:
            ref = self._read(g_prog, m).abs().flatten(1).mean(1)  # (n,)
            now = w.abs().flatten(1).mean(1).clamp(min=torch.finfo(w.dtype).tiny)  # (n,)
            w = w * (ref / now).view(-1, *([1] * (w.dim() - 1)))
        return w

    def _devices(self, g_target: Tensor, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        g = g_target.expand(n, *g_target.shape)  # (n, P, S, *shape)
        if self.sigma > 0:
            g = g + self.sigma * self._prog_std(g_target) * standard_normal(g.shape, g, generator)
        if self.clip_negative:
            g = g.clamp(min=0.0)
        stuck = self._stuck_mask(g, generator)
        g_prog = self._apply_stuck(g, stuck)
        if self._drifts:
            nu = self._drift_nu(g_target, n, generator)  # (n, P, S, *shape)
            g = g * ((self.t0 + self.t_inference) / self.t0) ** (-nu)
        if self.read_noise != "none" and self.sigma * self.read_scale > 0:
            z = standard_normal(g.shape, g, generator)
            g = g + self.read_scale * self.sigma * self._read_std(g, g_prog) * z
            if self.clip_negative:
                g = g.clamp(min=0.0)
        return self._apply_stuck(g, stuck), g_prog

    def _read(self, g: Tensor, m: Mapping) -> Tensor:
        u = (g - self.g_min) / (self.g_max - self.g_min)
        v = (u * m.slice_w).sum(2)  # (n, P, *shape)
        v = v[:, 0] - v[:, 1] if m.sign is None else v[:, 0] * m.sign
        return v * m.w_max

    # ------------------------------------------------------------------------ device physics

    def _prog_std(self, g: Tensor) -> Tensor | float:
        if self.prog_noise == "constant":
            return self.g_max - self.g_min
        r = g / self.g_max
        c0, c1, c2 = PCM_PROG_COEFF
        return (c0 + c1 * r + c2 * r * r) * (self.g_max / PCM_G_MAX_REFERENCE)

    def _drift_nu(self, g_target: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        z = standard_normal((n, *g_target.shape), g_target, generator)
        if self.drift == "constant":
            return (self.drift_nu + self.drift_nu_std * z).clamp(min=0.0)
        log_g = torch.log((g_target / self.g_max).clamp(min=1e-7))
        mu = (-0.0155 * log_g + 0.0244).clamp(0.049, 0.1)
        sd = (-0.0125 * log_g - 0.0059).clamp(0.008, 0.045)
        return (mu + sd * z).abs()

    def _read_std(self, g: Tensor, g_prog: Tensor) -> Tensor | float:
        if self.read_noise == "constant":
            return self.g_max - self.g_min
        t = self.t0 + self.t_inference
        q_s = (0.0088 / ((g_prog.abs() / self.g_max) ** 0.65).clamp(min=1e-3)).clamp(max=0.2)
        return g.abs() * q_s * math.sqrt(math.log((t + self.t_read) / (2 * self.t_read)))

    def _stuck_mask(self, g: Tensor, generator: torch.Generator | None) -> Tensor | None:
        """Per device: 0 working, 1 stuck OFF, 2 stuck ON; None without faults."""
        if not self._faults:
            return None
        r = torch.rand(g.shape, generator=generator, device=g.device, dtype=g.dtype)
        off = r < self.p_stuck_off
        on = (r >= self.p_stuck_off) & (r < self.p_stuck_off + self.p_stuck_on)
        return off.to(torch.uint8) + 2 * on.to(torch.uint8)

    def _apply_stuck(self, g: Tensor, stuck: Tensor | None) -> Tensor:
        if stuck is None:
            return g
        g = torch.where(stuck == 1, self.g_min, g)
        return torch.where(stuck == 2, self.g_max, g)
