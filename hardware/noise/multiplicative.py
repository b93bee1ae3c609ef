"""Multiplicative (relative) Gaussian noise."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from hardware.noise.base import NOISE_MODELS, NoiseModel, StandardForm, standard_normal


@NOISE_MODELS.add
class Multiplicative(NoiseModel):
    r"""w~ = w * (1 + sigma * z),  z ~ N(0, 1) per weight and draw.

    E[w~ / w] = 1, Std[w~ / w] = sigma. The evaluation noise of Buechel, Faber and Muir (ICLR 2022).
    """

    name: Literal["multiplicative"] = "multiplicative"

    def sample(self, weight: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        w = weight.detach()
        z = standard_normal((n, *w.shape), w, generator)  # (n, *w.shape)
        return torch.addcmul(w, z, self.sigma * w)

    def standard_form(self, weight: Tensor) -> StandardForm:
        w = weight.detach()
        return StandardForm(loc=w, scale=w)
