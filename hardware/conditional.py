r"""Rao-Blackwellized accuracy: the output layer's Gaussian weight noise integrated analytically.

When the model returns the output of its last analog layer unchanged (a Linear head, logits =
W~ h + b) and that layer's noise is w~ = w + sigma * scale * z (additive, multiplicative), then given
the noisy features h of one draw of the other layers the logits are independent Gaussians:
l~_c ~ N(l_c, s_c^2), s_c^2 = sigma^2 * sum_i scale_ci^2 h_i^2, l = W h + b (clean head). So

    P(correct | h) = int phi(t) prod_{c != y} Phi((l_y - l_c + s_y t) / s_c) dt

(Gauss-Hermite quadrature). Averaging this over the images instead of the 0/1 correct predictions
is the conditional expectation of the draw's accuracy given the other layers' noise: the same
mean, a smaller variance (Rao-Blackwell).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

NODES = 20
"""Gauss-Hermite nodes (the integrand is smooth)."""
SURE = 8.0
"""An image whose logit gap to every other class exceeds SURE standard deviations of the difference is
counted correct (wrong: below -SURE for some class) without the quadrature: off by < 1e-15."""


class OutputLayer:
    """The last analog layer of a model that returns its output unchanged; records its inputs."""

    def __init__(self, module: nn.Linear) -> None:
        self.module, self.inputs = module, []
        self._hook = module.register_forward_hook(self._record)
        t, w = np.polynomial.hermite_e.hermegauss(NODES)
        like = module.weight
        self.t = torch.tensor(t, dtype=like.dtype, device=like.device)
        self.w = torch.tensor(w / math.sqrt(2 * math.pi), dtype=like.dtype, device=like.device)

    def _record(self, _module: nn.Module, inputs: tuple[Tensor, ...], _output: Tensor) -> None:
        self.inputs.append(inputs[0])

    @classmethod
    def find(cls, model: nn.Module, last: nn.Module, x: Tensor) -> OutputLayer | None:
        """`last` wrapped when it is a Linear whose output the model returns as is (checked on `x`)."""
        if not isinstance(last, nn.Linear):
            return None
        seen: list[Tensor] = []
        hook = last.register_forward_hook(lambda _m, _i, out: seen.append(out))
        try:
            with torch.no_grad():
                out = model(x)
        finally:
            hook.remove()
        return cls(last) if len(seen) == 1 and seen[0] is out else None

    def close(self) -> None:
        self._hook.remove()

    def expected_correct(self, logits: Tensor, y: Tensor, scale: Tensor, sigma: float) -> Tensor:
        """Sum over the images of P(correct) under the head's noise; `logits` (N, C) of the clean head on
        the recorded inputs, `scale` (C, in) the head's noise scale per weight."""
        h = torch.cat(self.inputs) if len(self.inputs) > 1 else self.inputs[0]  # (N, in)
        self.inputs.clear()
        s = (torch.mm(h * h, (scale * scale).t()) * sigma**2).sqrt_()  # (N, C)
        ly, sy = logits.gather(1, y[:, None]), s.gather(1, y[:, None])  # (N, 1)
        gap = (ly - logits).scatter_(1, y[:, None], math.inf)  # (N, C); the true class never loses to itself
        width = SURE * (s * s + sy * sy).sqrt_()
        sure = (gap > width).all(1)  # correct whatever the head's noise (to 1e-15)
        lost = (gap < -width).any(1)  # wrong whatever the head's noise
        open_ = ~(sure | lost)
        if not bool(open_.any()):
            return sure.sum().to(s.dtype)
        gap, s, sy = gap[open_], s[open_], sy[open_]
        margin = gap[:, :, None] + sy[:, :, None] * self.t  # (M, C, K)
        phi = torch.special.ndtr(margin / s[:, :, None].clamp(min=torch.finfo(s.dtype).tiny))
        return sure.sum() + (phi.prod(1) * self.w).sum()  # the true class's factor is ndtr(inf) = 1
