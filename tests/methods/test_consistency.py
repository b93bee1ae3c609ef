"""Consistency regularization (and the forward noise training it builds on)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from tiny import random_batch, tiny_lenet

import hardware
from methods.base import METHODS
from methods.shared import frozen_batchnorm_stats

NOISE = hardware.noise_model("additive", sigma=0.2)


def lenet(seed: int = 0):
    return tiny_lenet(seed).train()


def data(n: int = 32):
    return random_batch(n)


def step(name: str, model, noise=NOISE, seed: int = 7, **params):
    x, y = data()
    torch.manual_seed(seed)
    out = METHODS.build(name, **params).step(model, x, y, noise)
    out.loss.backward()
    return out


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("distance", ["mse", "cosine", "kl"])
def test_at_zero_noise_the_term_is_zero_and_the_loss_is_plain_cross_entropy(distance):
    model, reference = lenet(), lenet()
    out = step("consistency", model, NOISE.with_sigma(0.0), distance=distance)
    base = step("baseline", reference)
    assert out.terms["consistency"] == pytest.approx(0.0, abs=1e-6)
    assert out.loss.item() == pytest.approx(base.loss.item(), abs=1e-6)
    for g, h in zip(grads(model), grads(reference), strict=True):
        torch.testing.assert_close(g, h, atol=1e-5, rtol=1e-4)


def test_noise_injection_is_cross_entropy_on_a_fresh_noisy_forward():
    a, b, c = lenet(), lenet(), lenet()
    clean = step("baseline", a).loss.item()
    assert step("noise_injection", b, NOISE.with_sigma(0.0)).loss.item() == pytest.approx(clean, abs=1e-6)
    method, (x, y) = METHODS.build("noise_injection"), data()
    torch.manual_seed(1)
    first, second = (method.step(c, x, y, NOISE).loss.item() for _ in range(2))
    assert first != second and first != pytest.approx(clean, abs=1e-3)  # noise redrawn every batch


def test_weight_zero_is_exactly_noise_injection():
    a, b = lenet(), lenet()
    out = step("consistency", a, weight=0.0)
    ref = step("noise_injection", b)
    assert out.loss.item() == ref.loss.item() and out.terms["consistency"] > 0
    for g, h in zip(grads(a), grads(b), strict=True):
        assert torch.equal(g, h)


def test_it_taps_the_stages_it_says_and_the_term_is_their_mse():
    model = lenet()
    method = METHODS.build("consistency", weight=2.0)
    assert method.stage_taps(model) == ["conv1", "conv2"] == list(model.default_taps)
    assert METHODS.build("consistency", taps=["fc1"]).stage_taps(model) == ["fc1"]
    x, y = data()
    for taps in (None, ["fc1"], ["conv2", "fc1"]):
        method = METHODS.build("consistency", weight=2.0, taps=taps)
        reference = copy.deepcopy(model)
        torch.manual_seed(5)
        out = method.step(model, x, y, NOISE)
        torch.manual_seed(5)  # the same noise draw, replayed by hand
        with torch.no_grad(), frozen_batchnorm_stats(reference):
            _, clean = reference.forward_features(x, reference.stage_names)
        with torch.no_grad(), hardware.noisy_weights(reference, NOISE):
            logits, noisy = reference.forward_features(x, reference.stage_names)
        expected = {t: F.mse_loss(noisy[t], clean[t]).item() for t in method.stage_taps(model)}
        got = {k.split("/")[1]: v for k, v in out.terms.items() if k.startswith("consistency/")}
        assert got == pytest.approx(expected, rel=1e-5)
        ce = F.cross_entropy(logits, y).item()
        assert out.loss.item() == pytest.approx(ce + 2.0 * sum(expected.values()), rel=1e-5)


def test_unknown_tap_is_a_clear_error():
    with pytest.raises(ValueError, match="nope"):
        step("consistency", lenet(), taps=["nope"])


def test_kl_compares_the_logits():
    model = lenet()
    x, y = data()
    reference = copy.deepcopy(model)
    torch.manual_seed(5)
    out = METHODS.build("consistency", distance="kl").step(model, x, y, NOISE)
    torch.manual_seed(5)
    with torch.no_grad():
        with frozen_batchnorm_stats(reference):
            p = F.softmax(reference(x), 1)
        with hardware.noisy_weights(reference, NOISE):
            q = F.softmax(reference(x), 1)
    kl = (p * (p.log() - q.log())).sum(1).mean().item()
    assert set(out.terms) == {"ce", "consistency"}
    assert out.terms["consistency"] == pytest.approx(kl, rel=1e-4) and kl > 0


def test_only_the_noisy_forward_updates_batchnorm_statistics():
    model, reference = lenet(), lenet()
    step("consistency", model, seed=9)
    torch.manual_seed(9)
    with torch.no_grad(), hardware.noisy_weights(reference, NOISE):
        reference(data()[0])
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        if "running" in name or "num_batches" in name:
            torch.testing.assert_close(a, b, msg=name)
    assert model.stages.conv1[1].num_batches_tracked.item() == 1


def test_detach_clean_stops_the_gradient_of_the_clean_branch():
    a, b = lenet(), lenet()
    step("consistency", a, weight=5.0)
    step("consistency", b, weight=5.0, detach_clean=False)
    assert any(not torch.allclose(g, h) for g, h in zip(grads(a), grads(b), strict=True))
    assert METHODS.build("consistency").passes() == (2, 1)
    assert METHODS.build("consistency", detach_clean=False).passes() == (2, 2)
