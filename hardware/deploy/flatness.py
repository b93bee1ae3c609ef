"""Flatness of trained weights: the largest eigenvalue of the loss Hessian, by power iteration."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from itertools import islice

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call


@dataclass
class Flatness:
    """The result of `hessian_max_eigenvalue`."""

    lambda_max: float
    """Rayleigh quotient v^T H v of the last iterate (unit v): the largest-magnitude Hessian eigenvalue."""
    rel_change: float
    """|lambda_k - lambda_{k-1}| / |lambda_k| at the last iteration: how far from converged it is."""
    iterations: int
    """Power iterations done (fewer than asked when it converged to `tol`)."""
    examples: int
    """Examples in the loss (the first batches of the loader)."""

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def hessian_max_eigenvalue(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    *,
    batches: int = 4,
    iterations: int = 20,
    tol: float | None = 1e-4,
    seed: int = 0,
) -> Flatness:
    r"""Sharpness of the minimum the model sits in: lambda_max of H = d^2 L / d theta^2, with

        L(theta) = (1/N) sum_i CE(f(x_i; theta), y_i)

    over the first `batches` batches of `loader` (N examples; pass an unshuffled loader over the
    training split so that every trial is measured on the same examples), theta = all parameters of
    the model, evaluated in eval mode (BatchNorm's running statistics, no dropout: the deployed
    function). Power iteration v <- Hv / |Hv| from v_0 ~ N(0, I) (seeded by `seed`) on exact
    Hessian-vector products (double backward), at most `iterations` times, stopping early once
    lambda changes by less than `tol` (relative); lambda = v^T H v.

    The measure of Keskar et al., "On large-batch training for deep learning: generalization gap and
    sharp minima" (ICLR 2017), computed as in Yao et al., "PyHessian" (IEEE BigData 2020). Power
    iteration finds the eigenvalue of largest magnitude, the largest positive one near a minimum.
    Not invariant to reparametrization (Dinh et al., ICML 2017): compare models of one architecture.
    Deterministic given the seed (same device, same data).
    """
    if batches < 1 or iterations < 1:
        raise ValueError(f"batches and iterations must be >= 1 (got batches={batches}, iterations={iterations})")
    device = next(model.parameters()).device
    data = [(x.to(device), y.to(device)) for x, y in islice(loader, batches)]
    total = sum(len(y) for _, y in data)
    if total == 0:
        raise ValueError("the loader yielded no examples")
    params = {n: p.detach() for n, p in model.named_parameters()}
    generator = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(device) for p in params.values()]
    v = _normalized(v)

    was_training = model.training
    model.eval()
    lam, rel, done = math.nan, math.nan, 0
    try:
        with torch.enable_grad():
            while done < iterations:
                hv = _hvp(model, data, total, params, v)
                lam, previous = float(sum((a * b).sum() for a, b in zip(v, hv, strict=True))), lam
                v, done = _normalized(hv), done + 1
                rel = abs(lam - previous) / abs(lam) if lam != 0 else math.nan  # NaN after the first
                if tol is not None and rel < tol:
                    break
    finally:
        model.train(was_training)
    return Flatness(lam, rel, done, total)


def _normalized(v: list[Tensor]) -> list[Tensor]:
    norm = torch.sqrt(sum((t * t).sum() for t in v))
    if norm == 0:
        raise ValueError("the Hessian-vector product is zero (a loss without curvature in these parameters)")
    return [t / norm for t in v]


def _hvp(
    model: nn.Module, data: list[tuple[Tensor, Tensor]], total: int, params: dict[str, Tensor], v: list[Tensor]
) -> list[Tensor]:
    """H v of the mean loss over all batches (exact, by double backward)."""
    out = [torch.zeros_like(t) for t in v]
    for x, y in data:
        leaves = {n: p.clone().requires_grad_() for n, p in params.items()}
        loss = F.cross_entropy(functional_call(model, leaves, (x,)), y, reduction="sum") / total
        grads = torch.autograd.grad(loss, list(leaves.values()), create_graph=True)
        dot = sum((g * t).sum() for g, t in zip(grads, v, strict=True))
        for acc, h in zip(out, torch.autograd.grad(dot, list(leaves.values())), strict=True):
            acc.add_(h)
    return out
