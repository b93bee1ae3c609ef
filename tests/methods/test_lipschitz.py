"""Lipschitz regularization: the orthogonality term and the method's loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hardware
import methods
from methods.correctnet.compensation import insert
from methods.lipschitz import gram_deviation, lipschitz_penalty
from zoo import build_model


def orthogonal(n: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q  # (n, n), q^T q = I


def naive(weight: torch.Tensor, lam: float) -> torch.Tensor:
    w = weight.reshape(weight.shape[0], -1)
    return (w.T @ w - lam * torch.eye(w.shape[1], dtype=w.dtype)).pow(2).sum()


def test_zero_for_an_orthogonal_weight_linear_and_conv():
    q = orthogonal(12)
    assert gram_deviation(q).item() == pytest.approx(0, abs=1e-20)
    conv = q.reshape(12, 3, 2, 2)  # out x (in * kh * kw) = 12 x 12, orthogonal
    assert gram_deviation(conv).item() == pytest.approx(0, abs=1e-20)
    assert gram_deviation(2 * q, lam=4.0).item() == pytest.approx(0, abs=1e-20)  # W^T W = 4 I


def test_grows_with_the_distance_from_orthogonality():
    q = orthogonal(8)
    values = [gram_deviation(c * q).item() for c in (1.0, 1.1, 1.5, 2.0, 3.0)]
    assert values == sorted(values) and values[0] < 1e-20 < values[1]
    # c Q: W^T W = c^2 I, so ||W^T W - I||^2 = n (c^2 - 1)^2
    assert values[3] == pytest.approx(8 * (4 - 1) ** 2)


@pytest.mark.parametrize("shape", [(5, 20), (20, 5), (6, 2, 3, 3), (30, 2, 1, 1)])
def test_equals_the_direct_formula_for_tall_and_wide_weights(shape):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64, requires_grad=True)
    fast, slow = gram_deviation(w, lam=0.7), naive(w, 0.7)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-10)
    g_fast, g_slow = torch.autograd.grad(fast, w)[0], torch.autograd.grad(slow, w)[0]
    torch.testing.assert_close(g_fast, g_slow)


@pytest.mark.parametrize("shape", [(6, 2, 3, 3), (30, 2, 1, 1), (4, 1, 3, 3)])
def test_a_channels_last_weight_gives_the_same_value_and_gradient(shape):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    w_last = w.contiguous(memory_format=torch.channels_last).requires_grad_()
    w = w.requires_grad_()
    a, b = gram_deviation(w, lam=0.7), gram_deviation(w_last, lam=0.7)
    assert b.item() == pytest.approx(a.item(), rel=1e-10)
    torch.testing.assert_close(torch.autograd.grad(b, w_last)[0], torch.autograd.grad(a, w)[0])


def test_penalty_sums_conv_and_linear_layers_but_not_compensation_modules():
    torch.manual_seed(0)
    model = build_model("lenet", 1, 8, 10)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 4
    expected = sum(naive(m.weight.double(), 1.0).item() for m in layers)
    assert lipschitz_penalty(model).item() == pytest.approx(expected, rel=1e-5)
    insert(model, {"head": {"kind": "linear", "width": 10, "rank": 4}})
    assert lipschitz_penalty(model).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="no conv or linear layer"):
        lipschitz_penalty(nn.Sequential(nn.ReLU()))


def test_loss_is_ce_plus_beta_times_the_penalty_and_noise_injection_is_optional():
    torch.manual_seed(0)
    model = build_model("mlp", 1, 8, 10, hidden=16)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    noise = hardware.noise_model("additive", sigma=0.2)
    out = methods.METHODS.build("lipschitz", beta=0.01, lam=0.5).step(model, x, y, noise)
    ce, reg = F.cross_entropy(model(x), y), lipschitz_penalty(model, 0.5)
    assert out.loss.item() == pytest.approx((ce + 0.01 * reg).item(), rel=1e-6)
    assert out.terms == pytest.approx({"ce": ce.item(), "lipschitz": reg.item()})
    noisy = methods.METHODS.build("lipschitz", noise_injection=True).step(model, x, y, noise)
    assert not torch.allclose(noisy.logits, model(x))
    quiet = methods.METHODS.build("lipschitz", noise_injection=True).step(model, x, y, noise.with_sigma(0.0))
    torch.testing.assert_close(quiet.logits, model(x), rtol=0, atol=0)


def test_training_with_it_makes_the_layers_more_orthogonal():
    """Twenty Adam steps of CE vs CE + beta * penalty from the same start (beta large to see it fast)."""
    x, y = torch.randn(256, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(256) % 10
    finals = {}
    for name, params in (("baseline", {}), ("lipschitz", {"beta": 0.05})):
        torch.manual_seed(0)
        model = build_model("mlp", 1, 8, 10, hidden=32)
        method, optimizer = (
            methods.METHODS.build(name, **params),
            torch.optim.Adam(model.parameters(), lr=1e-2),
        )
        start = lipschitz_penalty(model).item()
        for _ in range(20):
            loss = method.step(model, x, y, hardware.noise_model("additive")).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        finals[name] = lipschitz_penalty(model).item()
    floor = 32 + 22  # wide 32 x 64 and 10 x 32 weights: ||W^T W - I||^2 >= cols - rows
    assert finals["lipschitz"] - floor < 0.2 * (start - floor)
    assert finals["lipschitz"] - floor < 0.2 * (finals["baseline"] - floor)
