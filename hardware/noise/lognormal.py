"""Log-normal device variation."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from hardware.noise.base import NOISE_MODELS, NoiseModel, StandardForm, standard_normal


@NOISE_MODELS.add
class LogNormal(NoiseModel):
    r"""w~ = w * exp(sigma * z),  z ~ N(0, 1) per weight and draw.

    E[w~ / w] = exp(sigma^2 / 2), Std[w~ / w] = sqrt((exp(sigma^2) - 1) * exp(sigma^2)). The device
    variation of CorrectNet (Eldebiky et al., DATE 2023); the sign of a weight never flips.
    """

    name: Literal["lognormal"] = "lognormal"

    def sample(self, weight: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        w = weight.detach()
        z = standard_normal((n, *w.shape), w, generator)  # (n, *w.shape)
        return torch.exp(z * self.sigma) * w

    def standard_form(self, weight: Tensor) -> StandardForm:
        w = weight.detach()
        return StandardForm(loc=None, scale=w, exp=True)
