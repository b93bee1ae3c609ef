"""Adversarial parameter-space regularization (Buechel, Faber, Muir, ICLR 2022, arXiv 2106.05009):
an adversary perturbs the weights within a relative bound to change the network's output most; the
loss penalizes how far the attacked network's prediction moves from the clean one."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.func import functional_call

import hardware
from hardware import NoiseModel, in_layout_of
from methods.base import METHODS, Method, StepOutput
from methods.shared import frozen_batchnorm_stats, kl_divergence

NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
"""Layers whose parameters the adversary leaves alone (they are digital on the chip)."""


@METHODS.add
class Adversarial(Method):
    """L = CE(f(x; theta~), y) + beta * KL(f(x; theta) || f(x; theta*)), theta* from the attack:

        theta*_0     = theta + |theta| * zeta_init * R,      R ~ N(0, I)
        theta*_{k+1} = theta*_k + (zeta_attack * |theta| / N) * sign(grad_theta* KL(f(theta) || f(theta*_k)))

    for k < N = attack_steps, so |theta*_N - theta*_0| <= zeta_attack * |theta| (elementwise).
    theta~ is theta, or with `forward_noise` a fresh draw of the run's training noise model.

    Attacked: every parameter except those of normalization layers (conv/linear weights AND biases,
    as in the authors' code). BatchNorm: only the forward of the CE term updates the running
    statistics; the attack forwards (and, with forward noise, the clean one) use batch statistics
    with the running statistics frozen. Gradient: theta* = theta + |theta| * c with the attack's
    coefficients c held fixed, so d theta*/d theta = 1 + sign(theta) * c, the Jacobian of the
    authors' code; with `attack_as_constant` theta* is a constant and the KL's gradient reaches
    theta through f(x; theta) only.
    """

    name: Literal["adversarial"] = "adversarial"
    attack_steps: int = Field(10, ge=1)
    """N_steps, sign-gradient ascent steps of the adversary per batch (paper: 10)."""
    beta: float = Field(0.25, ge=0)
    """beta_rob, weight of the KL robustness term (paper: 0.25)."""
    zeta_attack: float = Field(0.1, ge=0)
    """zeta, the adversary's relative budget: |theta* - theta*_0| <= zeta * |theta| (paper: 0.1)."""
    zeta_init: float = Field(1e-3, ge=0)
    """zeta_init, relative std of the random start theta*_0 (paper: 0.001)."""
    forward_noise: bool = False
    """CE on a noisy forward under the training noise model (the paper's optional eta; off by default)."""
    attack_as_constant: bool = False
    """Treat theta* as a constant in the final gradient (cheaper: one backward fewer)."""

    @property
    def trains_under_noise(self) -> bool:
        return self.forward_noise

    def passes(self) -> tuple[int, int]:
        n, extra = self.attack_steps, int(self.forward_noise)
        return (n + 2 + extra, n + 1 + extra + int(not self.attack_as_constant))

    @staticmethod
    def attacked_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
        """Qualified name -> parameter the adversary perturbs (trainable, not of a normalization layer)."""
        attacked = {}
        for module_name, module in model.named_modules():
            if isinstance(module, NORM_LAYERS):
                continue
            for name, p in module.named_parameters(prefix=module_name, recurse=False):
                if p.requires_grad:
                    attacked[name] = p
        return attacked

    def attack(
        self, model: nn.Module, x: torch.Tensor, clean_logits: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], list[float]]:
        """The adversary's coefficients c (theta* = theta + |theta| * c, no grad) and the KL before
        each of its steps. Running statistics of BatchNorm are not updated."""
        params = self.attacked_parameters(model)
        scale = {n: p.detach().abs() for n, p in params.items()}
        coef = {n: self.zeta_init * torch.randn_like(p) for n, p in params.items()}
        target = clean_logits.detach()  # (B, classes)
        step = self.zeta_attack / self.attack_steps
        history = []
        with frozen_batchnorm_stats(model):
            for _ in range(self.attack_steps):
                star = {n: in_layout_of(p.detach() + scale[n] * coef[n], p).requires_grad_() for n, p in params.items()}
                kl = kl_divergence(target, functional_call(model, star, (x,)))
                grads = torch.autograd.grad(kl, list(star.values()))
                history.append(kl.detach())
                for c, g in zip(coef.values(), grads, strict=True):
                    c.add_(step * g.sign())
        return coef, torch.stack(history).tolist()  # one device sync, not one per step

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: NoiseModel) -> StepOutput:
        if self.forward_noise:
            with frozen_batchnorm_stats(model):
                clean_logits = model(x)  # (B, classes)
            with hardware.noisy_weights(model, noise):
                logits = model(x)  # (B, classes), updates the running statistics
        else:
            clean_logits = logits = model(x)
        ce = F.cross_entropy(logits, y)

        coef, _ = self.attack(model, x, clean_logits)
        params = self.attacked_parameters(model)
        with torch.set_grad_enabled(not self.attack_as_constant), frozen_batchnorm_stats(model):
            star = {n: in_layout_of(p + p.abs() * coef[n], p) for n, p in params.items()}
            star_logits = functional_call(model, star, (x,))  # (B, classes)
        kl = kl_divergence(clean_logits, star_logits)
        loss = ce + self.beta * kl
        ce_value, kl_value = torch.stack([ce, kl]).tolist()  # one device sync
        return StepOutput(loss, logits, {"ce": ce_value, "kl": kl_value})
