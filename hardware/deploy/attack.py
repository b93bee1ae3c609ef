"""The targeted weight attack of Büchel, Faber, Muir (ICLR 2022, arXiv 2106.05009) as a setting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch.func import functional_call

from hardware.apply import noisy_parameters
from hardware.curve import CurvePoint
from hardware.deploy.base import DEPLOY_SETTINGS, Batches, DeploySetting, DrawPlan
from hardware.engine import Prepared
from hardware.layout import in_layout_of
from hardware.noise.base import noise_model
from hardware.seeds import draw_generator


def analog_weights(model: nn.Module, digital_first: bool = False, digital_last: bool = False) -> dict[str, Tensor]:
    """Qualified name -> weight of the layers on the crossbar (`hardware.noisy_layers`), in module order."""
    flags = noise_model("additive", digital_first=digital_first, digital_last=digital_last)
    return noisy_parameters(model, flags)


def _loss_grads(
    model: nn.Module, batches: Batches, weights: dict[str, Tensor], delta: dict[str, Tensor]
) -> list[Tensor]:
    """The gradient w.r.t. delta of the mean cross-entropy over all batches at weights + delta."""
    total = sum(len(y) for _, y in batches)
    grads = [torch.zeros_like(d) for d in delta.values()]
    for x, y in batches:
        star = {n: in_layout_of(w.detach() + delta[n], w).requires_grad_() for n, w in weights.items()}
        loss = F.cross_entropy(functional_call(model, star, (x,)), y, reduction="sum") / total
        for g, dg in zip(grads, torch.autograd.grad(loss, list(star.values())), strict=True):
            g.add_(dg)
    return grads


def weight_attack(
    model: nn.Module,
    batches: Batches,
    weights: dict[str, Tensor],
    zeta: float,
    *,
    steps: int = 20,
    step_scale: float = 2.5,
    start: float = 0.1,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    r"""The perturbation delta (name -> tensor, no grad) of `weights` that maximizes the mean
    cross-entropy of `model` on `batches`, inside the relative box |delta| <= zeta |theta| elementwise,
    by projected signed-gradient ascent (Büchel, Faber, Muir, "Network insensitivity to parameter
    noise via adversarial regularization", ICLR 2022, arXiv 2106.05009: the adversary on the
    parameters of their Algorithm 1, with which they also evaluate robustness to targeted parameter
    attacks; here it maximizes the task loss, not the training KL, and projects onto the box):

        delta_0     = start * zeta * |theta| * u,       u ~ U(-1, 1) from `generator`
        delta_{k+1} = clip(delta_k + step_scale * zeta * |theta| / steps * sign(grad_delta L(theta + delta_k)),
                           -zeta |theta|, zeta |theta|)

    for k < `steps`. One delta for the whole data (the chip is programmed once), its gradient summed
    over the batches. Runs in the model's current mode (call it in eval mode); the model's weights
    are never written. zeta = 0 gives delta = 0 exactly.
    """
    bound = {n: zeta * w.detach().abs() for n, w in weights.items()}
    delta = {}
    for n, b in bound.items():
        u = torch.rand(b.shape, generator=generator, device=b.device, dtype=b.dtype)  # (*w.shape)
        delta[n] = start * b * (2 * u - 1)
    if zeta == 0:
        return delta
    step = step_scale / steps
    with torch.enable_grad():
        for _ in range(steps):
            grads = _loss_grads(model, batches, weights, delta)
            for (n, d), g in zip(delta.items(), grads, strict=True):
                d.add_(step * bound[n] * g.sign())
                torch.minimum(torch.maximum(d, -bound[n]), bound[n], out=d)
    return delta


@torch.no_grad()
def accuracy_at(model: nn.Module, batches: Batches, weights: dict[str, Tensor], delta: dict[str, Tensor]) -> float:
    """Accuracy with `weights` + `delta` (the model's own weights untouched)."""
    star = {n: in_layout_of(w.detach() + delta[n], w) for n, w in weights.items()}
    correct = sum(int((functional_call(model, star, (x,)).argmax(-1) == y).sum()) for x, y in batches)
    return correct / sum(len(y) for _, y in batches)


@DEPLOY_SETTINGS.add
class WeightAttack(DeploySetting):
    """Accuracy vs zeta under `weight_attack` on the analog layers' weights (conv and linear weights,
    `hardware.noisy_layers`; biases and normalization stay digital). Draw k is attack start k, its
    uniform start u from `draw_generator(seed, k)`; the curve's mean is over `starts` starts and its
    `min` is the strongest attack found. zeta = 0 is the clean accuracy (`Prepared.clean_accuracy`).

    Defaults: K = 20 steps (twice the adversarial method's training attack), step 2.5 zeta |theta| / K
    (so the box's faces are reachable from anywhere after 40% of the steps, the PGD habit), a start
    in the inner tenth of the box. Evaluation `samples` and `target_ci` do not apply: the spread
    over starts is small and each start costs K forward and backward passes over the split.
    """

    name: Literal["attack"] = "attack"
    axis: ClassVar[str] = "zeta"
    values: list[float] = Field(default_factory=lambda: [0.0, 0.02, 0.05, 0.1, 0.2])
    """Relative attack budgets zeta, |delta| <= zeta |theta| elementwise (Büchel et al. train at 0.1)."""
    steps: int = Field(20, ge=1)
    """K, signed-gradient ascent steps."""
    step_scale: float = Field(2.5, gt=0)
    """c: each step moves every weight by c zeta |theta| / K before the projection."""
    start: float = Field(0.1, ge=0, le=1)
    """Random start uniform in this fraction of the box."""
    starts: int = Field(2, ge=1)
    """Attacks from different random starts per zeta (the curve's draws)."""
    digital_first: bool = False
    """Leave the first conv/linear layer out (digital), as the noise model's flag."""
    digital_last: bool = False
    """Leave the last conv/linear layer out (digital)."""

    @property
    def unit(self) -> str:
        return "relative |δ|/|θ|, worst case"

    def draws(self, samples: int) -> int:
        return self.starts

    @property
    def default_label(self) -> str:
        return "attack"

    def points(self, prepared: Prepared, plan: DrawPlan) -> list[CurvePoint]:
        model, device = prepared.model, prepared.y.device
        ys = prepared.y.split([len(x) for x in prepared.xs])
        batches = list(zip(prepared.xs, ys, strict=True))  # on the device, in the prepared layout
        weights = analog_weights(model, self.digital_first, self.digital_last)
        points = []
        for zeta in self.values:
            if zeta == 0:
                accs = [prepared.clean_accuracy()]
                points.append(CurvePoint.from_accuracies(zeta, accs, deterministic=True))
                continue
            with unrecorded(prepared):
                accs = []
                for k in range(self.starts):
                    delta = weight_attack(
                        model, batches, weights, zeta, steps=self.steps, step_scale=self.step_scale,
                        start=self.start, generator=draw_generator(plan.seed, k, device),
                    )  # fmt: skip
                    accs.append(accuracy_at(model, batches, weights, delta))
            points.append(CurvePoint.from_accuracies(zeta, accs, deterministic=False))
        return points


class _Discarding(list):
    def append(self, _item: object) -> None:
        pass


@contextmanager
def unrecorded(prepared: Prepared) -> Iterator[None]:
    """The engine's output-layer hook (`Prepared.head`, for its analytic accuracy) records the inputs of
    every forward; the attack's forwards (with autograd graphs) must not pile up there."""
    head = prepared.head
    if head is None:
        yield
        return
    saved, head.inputs = head.inputs, _Discarding()
    try:
        yield
    finally:
        head.inputs = saved
