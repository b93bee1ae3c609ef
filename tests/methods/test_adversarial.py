"""The adversarial parameter-space attack and its KL regularizer (Buechel et al., ICLR 2022)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny import random_batch, tiny_lenet
from torch import nn

import hardware
from methods.base import METHODS
from methods.shared import kl_divergence

NOISE = hardware.noise_model("multiplicative", sigma=0.2)


def lenet(seed: int = 0):
    return tiny_lenet(seed).train()


def data(n: int = 32):
    return random_batch(n)


def step(model, noise=NOISE, seed: int = 7, **params):
    x, y = data()
    torch.manual_seed(seed)
    out = METHODS.build("adversarial", **params).step(model, x, y, noise)
    out.loss.backward()
    return out


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


def test_the_attack_raises_the_kl_over_its_steps():
    model, (x, _) = lenet(), data()
    method = METHODS.build("adversarial", attack_steps=8)
    with torch.no_grad():
        clean = model(x)
    torch.manual_seed(0)
    coef, history = method.attack(model, x, clean)
    assert len(history) == 8
    assert all(b > a for a, b in zip(history[:-1], history[1:], strict=True))  # ascent, step after step
    assert history[0] < 1e-3 < history[-1]  # starts next to theta (zeta_init = 1e-3), ends far
    params = method.attacked_parameters(model)
    with torch.no_grad():
        final = kl_divergence(
            clean, torch.func.functional_call(model, {n: p + p.abs() * coef[n] for n, p in params.items()}, (x,))
        )
    assert final.item() > history[-1]


@pytest.mark.parametrize("zeta_attack", [0.05, 0.3])
def test_the_attack_stays_inside_its_relative_bound_and_uses_it(zeta_attack):
    model, (x, _) = lenet(), data()
    method = METHODS.build("adversarial", zeta_attack=zeta_attack, zeta_init=0.0, attack_steps=5)
    with torch.no_grad():
        clean = model(x)
    coef, _ = method.attack(model, x, clean)
    biggest = max(c.abs().max().item() for c in coef.values())
    assert biggest == pytest.approx(zeta_attack, rel=1e-5)  # some weight got 5 steps of one sign
    for name, c in coef.items():  # theta* - theta = |theta| * c,  |c| <= zeta_attack
        assert (c.abs() <= zeta_attack * (1 + 1e-6)).all(), name


def test_batchnorm_is_neither_attacked_nor_updated_by_the_attack():
    model, reference = lenet(), lenet()
    attacked = METHODS.build("adversarial").attacked_parameters(model)
    bn = [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    norms = {f"{name}.{p}" for name in bn for p in ("weight", "bias")}
    assert len(bn) == 2
    assert attacked.keys() == {n for n, p in model.named_parameters()} - norms
    assert "head.bias" in attacked  # biases are attacked too, as in the authors' code
    step(model)
    with torch.no_grad():
        reference(data()[0])  # the one forward that may update the statistics: the CE term's
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        if "running" in name or "num_batches" in name:
            torch.testing.assert_close(a, b, msg=name)


def test_without_budget_the_regularizer_vanishes():
    model, reference = lenet(), lenet()
    out = step(model, zeta_attack=0.0, zeta_init=0.0)
    x, y = data()
    F.cross_entropy(reference(x), y).backward()
    assert out.terms["kl"] == pytest.approx(0.0, abs=1e-7)
    assert out.loss.item() == pytest.approx(out.terms["ce"], abs=1e-7)
    for g, h in zip(grads(model), grads(reference), strict=True):
        torch.testing.assert_close(g, h, atol=1e-6, rtol=1e-5)


def test_the_gradient_flows_through_theta_star_unless_constant():
    model, const, no_reg = lenet(), lenet(), lenet()
    through = step(model)
    step(const, attack_as_constant=True)
    step(no_reg, beta=0.0)
    assert through.terms["kl"] > 0 and through.loss.item() == pytest.approx(
        through.terms["ce"] + 0.25 * through.terms["kl"], rel=1e-6
    )
    g_through, g_const, g_ce = grads(model), grads(const), grads(no_reg)
    assert any(not torch.allclose(a, b) for a, b in zip(g_through, g_const, strict=True))
    assert any(not torch.allclose(a, b) for a, b in zip(g_const, g_ce, strict=True))


def test_the_gradient_is_the_authors_jacobian_through_theta_star():
    """dL/dtheta = dCE/dtheta + beta * (dKL/dtheta|theta* fixed + dKL/dtheta* * (1 + sign(theta) * c))."""
    model, (x, y) = lenet(), data()
    out = step(model, NOISE.with_sigma(0.0), seed=1, beta=1.0)
    method, reference = METHODS.build("adversarial", beta=1.0), lenet()
    torch.manual_seed(1)  # replay the attack's random start
    clean = reference(x)
    coef, _ = method.attack(reference, x, clean)
    params = method.attacked_parameters(reference)
    star = {n: (p.detach() + p.detach().abs() * coef[n]).requires_grad_() for n, p in params.items()}
    kl = kl_divergence(clean, torch.func.functional_call(reference, star, (x,)))
    grad_star = torch.autograd.grad(kl, list(star.values()), retain_graph=True)
    (F.cross_entropy(clean, y) + kl).backward()  # the path through f(x; theta) only
    got = dict(model.named_parameters())
    for (n, p), g in zip(params.items(), grad_star, strict=True):
        expected = p.grad + g * (1 + p.detach().sign() * coef[n])
        torch.testing.assert_close(got[n].grad, expected, atol=1e-6, rtol=1e-4, msg=n)
    assert out.terms["kl"] == pytest.approx(kl.item(), rel=1e-5)


def test_forward_noise_puts_the_training_noise_on_the_ce_term_only():
    clean_ce = step(lenet(), attack_steps=2).terms["ce"]
    off = step(lenet(), NOISE.with_sigma(0.0), attack_steps=2, forward_noise=True)
    assert off.terms["ce"] == pytest.approx(clean_ce, abs=1e-6)
    noisy = step(lenet(), attack_steps=2, forward_noise=True)
    assert noisy.terms["ce"] != pytest.approx(clean_ce, abs=1e-4)


def test_pass_counts():
    assert METHODS.build("adversarial").passes() == (12, 12)
    assert METHODS.build("adversarial", attack_as_constant=True).passes() == (12, 11)
    assert METHODS.build("adversarial", attack_steps=3, forward_noise=True).passes() == (6, 6)


def test_bad_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="attack_steps"):
        METHODS.build("adversarial", attack_steps=0)
    with pytest.raises(ValueError, match="zeta_attack"):
        METHODS.build("adversarial", zeta_attack=-0.1)
