r"""A control variate for the Monte Carlo accuracy: the linearized-margin surrogate, whose mean is known.

Image n has the clean margin m_n = l_y - l_r (r: its runner-up class at the clean weights) and the
margin's derivative per unit sigma * z in the noise's standard form (w~ = loc + sigma * scale * z),
J_n = (d m_n / d w) * scale at the clean weights (log-normal: the same at z = 0). Projected onto the top `RANK`
right singular vectors V (r x P, orthonormal rows) of J, J~_n = A_n V with A = J V^T (N x r). The
surrogate of a draw's accuracy at scale sigma

    c(z) = 1/N sum_n Phi((m_n + sigma A_n V z) / (sigma t_n))

(t_n: the std per unit sigma of the output layer's noise on the margin at the clean features when
that layer is integrated analytically, `hardware.conditional`; otherwise t_n = 0 and Phi(x / 0) is
the step 1[x > 0]) has the exact mean, since A_n V z ~ N(0, |A_n|^2) for z ~ N(0, I):

    E[c] = 1/N sum_n Phi(m_n / (sigma sqrt(|A_n|^2 + t_n^2)))

The control of a draw is c(z) - E[c]; `hardware.statistics.control_adjusted` turns it into adjusted
per-draw accuracies. Any fixed J~ keeps E[c] exact (the estimate unbiased); V only decides how well
c follows the accuracy. Cost per draw: V z (r x P multiply-adds) once for all scales; the N normal
CDFs per draw and scale run in one batch when the curve asks (`DrawControls`). Set-up per curve: the
per-image Jacobian (one forward and backward pass over the data) and a rank-r randomized SVD.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hardware.conditional import OutputLayer
from hardware.deployed import Deployed
from hardware.noise.base import NoiseModel, StandardForm


class Prepared(Protocol):
    """What the control needs of a `hardware.engine.Prepared` (no import of the engine: no loop)."""

    model: nn.Module
    deployed: Deployed
    head: OutputLayer | None
    xs: list[Tensor]
    y: Tensor

    def _logits(self) -> Tensor: ...


RANK = 16
"""Rank of the Jacobian kept. Picked from a sweep of ranks 8 to 64 on pair A of bench/variance.py
(exact SVD; correlation with the accuracy within 0.05 of full rank at scales 0.2-0.3, 0.1 lower at
0.1) and checked on pair B; V z then costs about 1% of a digits LeNet forward per draw."""
MAX_JACOBIAN = 2**25
"""At most this many Jacobian entries (128 MiB in float32): larger evaluations use the images with
the smallest clean margins only (the surrogate is then over those; still exactly known mean)."""
CONTROL_MIN_DRAWS = 32
"""`Prepared.curve(control=None)` uses the control from this many draws (samples x random scales): its
set-up (about a forward and backward pass over the data and an SVD; 0.1 s on the digits LeNet, the
time of about 30 draws at one scale) costs more than it saves below that, e.g. in the per-epoch
validation (3 draws at one scale)."""
CHUNK = 32
"""Images per vmapped per-example Jacobian."""


class MarginControl:
    """The surrogate of one prepared model under one noise form (see the module docstring)."""

    def __init__(self, margins: Tensor, a: Tensor, v: Tensor, t: Tensor, total: int) -> None:
        self.m, self.a, self.v, self.t, self.total = margins, a, v, t, total  # (M,), (M, r), (r, P), (M,)
        self.norm2 = ((a @ (v @ v.t())) * a).sum(1)  # Var(A_n V z) exactly, orthonormal rows or not

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        logits: Tensor,
        layers: list[nn.Module],
        scale: Tensor,
        cols: Tensor | None,
        head: tuple[Tensor, Tensor] | None,
    ) -> MarginControl:
        """`x`, `y`, `logits`: the data and its clean logits; `layers`: the layers (at their clean
        weights) the noise perturbs apart from an integrated head, in order; `scale`: the form's
        scale over them in buffer order; `cols`: buffer position -> standard position over them (None:
        the same); `head`: (features at the clean weights (N, in), the head's noise scale (C, in))
        when the head is integrated analytically."""
        rows = torch.arange(len(y), device=y.device)
        others = logits.clone()
        others[rows, y] = -math.inf
        runner = others.argmax(1)
        margins = logits[rows, y] - logits[rows, runner]
        p = sum(m.weight.numel() for m in layers)
        keep = torch.argsort(margins.abs())[: max(1, MAX_JACOBIAN // max(p, 1))].sort().values
        eye = torch.eye(logits.shape[1], dtype=logits.dtype, device=logits.device)
        j = _margin_jacobian(model, x[keep], (eye[y] - eye[runner])[keep], layers)  # standard order
        if cols is not None:  # the scale to standard order (V back to buffer order below): no copy of j
            scale = torch.empty_like(scale).index_put_((cols,), scale)
        j = j.mul_(scale)
        v = _top_right_vectors(j, RANK)
        t = torch.zeros_like(margins[keep])
        if head is not None:
            h, s = head[0][keep], head[1]
            t = ((h * h) * (s[y[keep]] ** 2 + s[runner[keep]] ** 2)).sum(1).sqrt()
        return cls(margins[keep], j @ v.t(), v if cols is None else v[:, cols], t, len(y))

    def reduce(self, z: Tensor) -> Tensor:
        """V z of draws `z` (K, >= P) in buffer order: (K, r), all a draw needs (the same at every scale)."""
        return torch.mm(z[:, : self.v.shape[1]], self.v.t())

    def controls(self, low: Tensor, sigma: float) -> list[float]:
        """c(z) - E[c] of the draws with V z = rows of `low` (negate it for -z) at scale `sigma`."""
        m, t = self.m.double(), (sigma * self.t).double()
        x = m + sigma * torch.mm(low.double(), self.a.double().t())  # (K, M) linearized margins
        c = torch.where(t > 0, torch.special.ndtr(x / t.clamp(min=1e-300)), (x > 0).double())
        sd = sigma * (self.norm2.double() + self.t.double() ** 2).sqrt()
        mean = torch.where(sd > 0, torch.special.ndtr(m / sd.clamp(min=1e-300)), (m > 0).double())
        return ((c.sum(1) - mean.sum()) / self.total).tolist()


class DrawControls:
    """The controls of one curve's draws: V z kept per draw, c(z) - E[c] computed in batches when asked."""

    def __init__(self, control: MarginControl, pairs: bool) -> None:
        self.control, self.group, self.lows, self.done = control, 2 if pairs else 1, [], {}

    def add(self, z: Tensor) -> None:
        """The next z rows (with pairs: one row per pair z, -z)."""
        self.lows.append(self.control.reduce(z))

    def get(self, i: int, scale: float, n: int) -> list[float]:
        """The controls of the first `n` draws at the curve's scale number `i`."""
        have = self.done.setdefault(i, [])
        if len(have) < n:
            low = torch.cat(self.lows)[len(have) // self.group : n // self.group]
            plus = self.control.controls(low, scale)
            if self.group == 1:
                have.extend(plus)
            else:
                minus = self.control.controls(-low, scale)
                have.extend(c for pair in zip(plus, minus, strict=True) for c in pair)
        return have[:n]


@torch.no_grad()
def margin_control(prepared: Prepared, noise: NoiseModel, form: StandardForm, cond: bool) -> MarginControl | None:
    """The control of `prepared` under `noise` (standard form `form`, in buffer order over its span);
    with `cond` the output layer is integrated analytically and left out of z. None: no layer left,
    or autograd cannot differentiate the margins (e.g. integer inputs): the points have no `adjusted`."""
    d, layers, span = prepared.deployed, prepared.deployed.segment(noise), prepared.deployed.span(noise)
    stop = layers.stop - (1 if cond else 0)
    if stop <= layers.start:
        return None
    width = d.offsets[stop] - span.start
    cols = None if d.perm is None else d.perm[span.start : span.start + width] - span.start
    d.reset()
    if prepared.head is not None:
        prepared.head.inputs.clear()
    logits = prepared._logits()
    head = None
    if cond:
        h = torch.cat(prepared.head.inputs)
        head = (h, form.scale[width:].view(d.shapes[-1]))
    if prepared.head is not None:
        prepared.head.inputs.clear()
    modules = [m for _, m in d.layers[layers.start : stop]]
    x = torch.cat(prepared.xs) if len(prepared.xs) > 1 else prepared.xs[0]
    try:
        return MarginControl.build(prepared.model, x, prepared.y, logits, modules, form.scale[:width], cols, head)
    except RuntimeError:
        return None
    finally:
        if prepared.head is not None:
            prepared.head.inputs.clear()


def _margin_jacobian(model: nn.Module, x: Tensor, e: Tensor, layers: list[nn.Module]) -> Tensor:
    """d (logits . e_n) / d w per image n: (N, P), the layers in order, each flat in standard order.

    Linear and 2-d convolutions (groups 1) get their per-image weight gradients from the layer's
    input and output gradient of one backward pass (no torch.func: its first call costs about a
    second per process); other layers go through torch.func."""
    if not all(_hookable(m) for m in layers):
        return _margin_jacobian_func(model, x, e, layers)
    seen: dict[int, list[tuple[Tensor, Tensor]]] = {i: [] for i in range(len(layers))}

    def record(i: int) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], None]:
        return lambda _m, inputs, out: seen[i].append((inputs[0].detach(), out))

    hooks = [m.register_forward_hook(record(i)) for i, m in enumerate(layers)]
    try:
        with torch.enable_grad():
            margins = (model(x.detach().requires_grad_()) * e).sum()
            if any(len(v) != 1 for v in seen.values()):  # a layer called twice or not at all: no shortcut
                return _margin_jacobian_func(model, x, e, layers)
            # only the layers' output gradients: no parameter's .grad is computed or written
            grads = torch.autograd.grad(margins, [seen[i][0][1] for i in range(len(layers))])
    finally:
        for h in hooks:
            h.remove()
    parts = []
    for i, (m, g) in enumerate(zip(layers, grads, strict=True)):
        a = seen[i][0][0]
        n = len(a)
        if isinstance(m, nn.Conv2d):
            a = F.unfold(a, m.kernel_size, m.dilation, m.padding, m.stride)  # (N, C k k, L)
            parts.append(torch.einsum("nol,nkl->nok", g.reshape(n, g.shape[1], -1), a).reshape(n, -1))
        else:
            a, g = a.reshape(n, -1, a.shape[-1]), g.reshape(n, -1, g.shape[-1])
            parts.append(torch.einsum("nto,nti->noi", g, a).reshape(n, -1))
    return torch.cat(parts, 1)


def _hookable(m: nn.Module) -> bool:
    if isinstance(m, nn.Linear):
        return True
    return isinstance(m, nn.Conv2d) and m.groups == 1 and m.padding_mode == "zeros" and not isinstance(m.padding, str)


def _margin_jacobian_func(model: nn.Module, x: Tensor, e: Tensor, layers: list[nn.Module]) -> Tensor:
    from torch.func import functional_call, jacrev, vmap

    names = {id(m): n for n, m in model.named_modules()}
    weights = {f"{names[id(m)]}.weight".lstrip("."): m.weight.detach() for m in layers}

    def margin(ws: dict[str, Tensor], xi: Tensor, ei: Tensor) -> Tensor:
        return (functional_call(model, ws, (xi[None],))[0] * ei).sum()

    grad = vmap(jacrev(margin), in_dims=(None, 0, 0))
    with torch.enable_grad():
        parts = [grad(weights, xc, ec) for xc, ec in zip(x.split(CHUNK), e.split(CHUNK), strict=True)]
    return torch.cat([torch.cat([p[k].reshape(len(p[k]), -1) for k in weights], 1) for p in parts])


def _top_right_vectors(j: Tensor, rank: int, oversample: int = 8) -> Tensor:
    """The top `rank` right singular vectors of j (N, P) as orthonormal rows (<= rank, P): a randomized
    range finder with one power iteration and a fixed seed (deterministic), O(N P rank)."""
    q = min(rank + oversample, *j.shape)
    omega = torch.randn(j.shape[1], q, generator=torch.Generator(j.device).manual_seed(0), device=j.device)
    y = j @ omega.to(j.dtype)
    y = j @ (j.t() @ torch.linalg.qr(y).Q)
    b = (torch.linalg.qr(y).Q.t() @ j).double()  # (q, P): j's rows in the found basis
    vals, u = torch.linalg.eigh(b @ b.t())  # b = U S V^T: b b^T = U S^2 U^T (q x q, cheap)
    vals, u = vals.flip(0)[:rank], u.flip(1)[:, :rank]
    keep = vals > 1e-12 * vals[0].clamp(min=1e-300)  # directions j actually has
    return ((u[:, keep].t() @ b) / vals[keep].sqrt()[:, None]).to(j.dtype)
