"""Lipschitz (orthogonality) regularization, part 1 of CorrectNet (Eldebiky et al., DATE 2023,
arXiv 2211.14917): keeping every layer close to an isometry bounds how far a weight perturbation
can move the output, so the network is less sensitive to device variation."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import hardware
from hardware import ANALOG_LAYERS, NoiseModel
from methods.base import METHODS, Method, StepOutput


def gram_deviation(weight: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    r"""||W^T W - lam I||_F^2 of `weight` reshaped to (out, rest) (conv: rest = in * kh * kw).

    Computed with the smaller Gram matrix: ||W^T W||_F = ||W W^T||_F and both have trace ||W||_F^2, so
    ||W^T W - lam I_cols||^2 = ||W W^T - lam I_rows||^2 + lam^2 (cols - rows). For a wide conv weight
    that is a (out x out) instead of an (in*k*k x in*k*k) product, with the same value and gradient.
    """
    if weight.dim() == 4 and not weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last):
        weight = weight.permute(0, 2, 3, 1)  # a view in channels_last memory; permuted columns, the same value
    w = weight.reshape(weight.shape[0], -1)  # (rows, cols)
    rows, cols = w.shape
    return _GramDeviation.apply(w, lam) + lam**2 * max(0, cols - rows)


class _GramDeviation(torch.autograd.Function):
    """||G - lam I||_F^2 with G the smaller Gram matrix of w, and its gradient in closed form:
    d/dW = 4 W (G - lam I) for G = W^T W, 4 (G - lam I) W for G = W W^T. Two matrix products where
    autograd through the expression takes three, and no elementwise chain: on small networks
    (LeNet on 8x8 images) the term costs as much as a forward pass."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor, lam: float) -> torch.Tensor:
        tall = w.shape[1] <= w.shape[0]
        deviation = w.T @ w if tall else w @ w.T  # (m, m), m = min(rows, cols)
        deviation.diagonal().sub_(lam)
        ctx.save_for_backward(w, deviation)
        ctx.tall = tall
        return deviation.pow(2).sum()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        w, deviation = ctx.saved_tensors
        grad_w = w @ deviation if ctx.tall else deviation @ w  # (rows, cols)
        return grad_w.mul_(4 * grad), None


def lipschitz_penalty(model: nn.Module, lam: float = 1.0) -> torch.Tensor:
    """sum over the analog (conv and linear) layers l of ||W_l^T W_l - lam I||_F^2 (a scalar tensor)."""
    terms = [gram_deviation(m.weight, lam) for m in model.modules() if isinstance(m, ANALOG_LAYERS)]
    if not terms:
        raise ValueError("lipschitz: the model has no conv or linear layer to regularize")
    return torch.stack(terms).sum()


@METHODS.add
class Lipschitz(Method):
    """L = CE(f(x; w), y) + beta * sum_l ||W_l^T W_l - lambda I||_F^2 over conv (reshaped to
    out x in*k*k) and linear weights. With `noise_injection` the CE term is computed on a noisy
    forward (as in `noise_injection`); the regularizer always acts on the clean weights.

    The authors' re-implementation in NeFT_CIM orthogonalizes each kh x kw kernel slice of a conv
    weight instead; the out x rest reshaping here is the paper's per-layer W^T W.
    Terms logged: `ce`, `lipschitz` (the unweighted sum).
    """

    name: Literal["lipschitz"] = "lipschitz"
    beta: float = Field(5e-4, ge=0)
    """beta, weight of the orthogonality term (paper: 5e-4)."""
    lam: float = Field(1.0, gt=0)
    """lambda, the target W^T W = lambda I (paper: 1)."""
    noise_injection: bool = False
    """Compute the CE term on a noisy forward under the training noise model (off in the paper)."""

    @property
    def trains_under_noise(self) -> bool:
        return self.noise_injection

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: NoiseModel) -> StepOutput:
        if self.noise_injection:
            with hardware.noisy_weights(model, noise):
                logits = model(x)  # (B, classes)
        else:
            logits = model(x)  # (B, classes)
        ce = F.cross_entropy(logits, y)
        reg = lipschitz_penalty(model, self.lam)
        loss = ce + self.beta * reg
        return StepOutput(loss, logits, {"ce": ce.item(), "lipschitz": reg.item()})
