"""Additive Gaussian noise scaled by the layer's largest weight."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from hardware.noise.base import NOISE_MODELS, NoiseModel, StandardForm, standard_normal


@NOISE_MODELS.add
class Additive(NoiseModel):
    r"""w~ = w + sigma * max|W_layer| * z,  z ~ N(0, 1) per weight and draw.

    E[w~ - w] = 0, Std[w~ - w] = sigma * max|W_layer|. The noise of Joshi et al. (2020) and the
    "noise scale" of Hou et al. (2024); the conductance range is set by the largest weight.
    """

    name: Literal["additive"] = "additive"

    def sample(self, weight: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        w = weight.detach()
        z = standard_normal((n, *w.shape), w, generator)  # (n, *w.shape)
        return torch.add(w, z, alpha=self.sigma * float(w.abs().max()))

    def standard_form(self, weight: Tensor) -> StandardForm:
        w = weight.detach()
        return StandardForm(loc=w, scale=w.abs().max())  # scale: a 0-d tensor
