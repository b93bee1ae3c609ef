"""The crossbar model: mapping, quantization, bit slicing, device noise, drift, faults."""

from __future__ import annotations

import math

import pytest
import torch

from hardware import Crossbar, noise_model
from hardware.noise.crossbar import PCM_PROG_COEFF


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def weights(shape: tuple[int, ...] = (250, 400), seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=gen(seed))


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("differential", [False, True])
def test_infinite_bits_without_noise_is_identity(per_channel: bool, differential: bool) -> None:
    w = weights((32, 16, 3, 3))
    model = noise_model("crossbar", per_channel=per_channel, differential=differential, g_min=2.0)
    assert model.is_identity
    torch.testing.assert_close(model.sample(w, 2, gen())[1], w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bits, bits_per_device", [(3, None), (4, 2), (4, None), (8, 2)])
def test_quantized_levels(bits: int, bits_per_device: int | None) -> None:
    w = torch.linspace(-1.3, 1.3, 4096).reshape(64, 64)  # every level is hit
    model = noise_model("crossbar", bits=bits, bits_per_device=bits_per_device)
    assert not model.is_identity and model.is_deterministic
    out = model.sample(w, 1, gen())[0]
    top = 2**bits - 1
    levels = out / w.abs().max() * top
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-3)  # on the grid
    assert levels.round().unique().numel() == 2 * top + 1  # 2^bits magnitudes, both signs
    torch.testing.assert_close(out, (w / w.abs().max() * top).round() * w.abs().max() / top)


def test_slicing_keeps_the_quantized_weight() -> None:
    w = weights((64, 64))
    plain = noise_model("crossbar", bits=8).sample(w, 1, None)
    sliced = noise_model("crossbar", bits=8, bits_per_device=2)
    assert sliced.slices == 4
    torch.testing.assert_close(sliced.sample(w, 1, None), plain)
    u, _ = sliced.levels(w)
    assert u.shape == (2, 4, 64, 64)
    assert set((u * 3).round().unique().tolist()) == {0.0, 1.0, 2.0, 3.0}  # 2-bit devices


@pytest.mark.parametrize(
    "params, factor",
    [
        ({}, math.sqrt(2)),  # analog differential pair: two noisy devices
        ({"differential": False}, 1.0),
        # NFT: 8 bits over four 2-bit devices -> sqrt(1 + 4^2 + 16^2 + 64^2) / 85 = 0.778
        ({"bits": 8, "bits_per_device": 2, "differential": False}, math.sqrt(4369) / 85),
    ],
)
def test_constant_programming_noise_closed_form(params: dict, factor: float) -> None:
    w = weights()
    sigma = 0.05
    model = noise_model("crossbar", sigma=sigma, clip_negative=False, g_min=1.0, g_max=11.0, **params)
    clean = model.with_sigma(0).sample(w, 1, None)
    delta = model.sample(w, 2, gen()) - clean  # (2, 250, 400)
    expected = sigma * w.abs().max().item() * factor
    assert abs(delta.mean().item()) < 5 * expected / math.sqrt(delta.numel())
    assert abs(delta.std().item() / expected - 1) < 0.015


def test_nft_preset_is_additive_0778() -> None:
    from hardware import preset

    w = weights()
    model = preset("nft_rram", sigma=0.1)
    delta = model.sample(w, 2, gen()) - model.with_sigma(0).sample(w, 1, None)
    assert abs(delta.std().item() / (0.1 * 0.7776 * w.abs().max().item()) - 1) < 0.015


def test_pcm_programming_noise_follows_the_polynomial() -> None:
    # half the weights at max|W| (g = g_max), half at max|W| / 2 (g = g_max / 2)
    w = torch.ones(250, 400)
    w[:, 200:] = 0.5
    w[::2] *= -1
    model = noise_model("crossbar", sigma=1.0, prog_noise="pcm", differential=False, g_max=25.0)
    delta = model.sample(w, 2, gen()) - w  # (2, 250, 400)
    c0, c1, c2 = PCM_PROG_COEFF
    for level, cols in ((1.0, slice(0, 200)), (0.5, slice(200, 400))):
        std_us = c0 + c1 * level + c2 * level**2
        d = delta[:, :, cols]
        assert abs(d.mean().item()) < 5 * std_us / 25 / math.sqrt(d.numel())
        assert abs(d.std().item() / (std_us / 25) - 1) < 0.02


def test_stuck_devices_binomial() -> None:
    p_off, p_on = 0.05, 0.02
    model = noise_model("crossbar", g_min=1.0, g_max=10.0, p_stuck_off=p_off, p_stuck_on=p_on)
    assert not model.is_deterministic and not model.is_identity
    w = weights((200, 250))
    g, _ = model.conductances(w, 2, gen())  # (2, 2, 1, 200, 250)
    target = model.g_min + (model.g_max - model.g_min) * model.levels(w)[0]  # (2, 1, 200, 250)
    target = target.expand_as(g)
    for value, p in ((model.g_min, p_off), (model.g_max, p_on)):
        candidates = target != value  # only devices not programmed to that value reveal a fault
        frac = (g[candidates] == value).double().mean().item()
        n = candidates.sum().item()
        assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / n), (frac, p)


@pytest.mark.parametrize("compensate", [True, False])
def test_drift_compensation_restores_the_output_scale(compensate: bool) -> None:
    t, t0, nu = 86400.0, 20.0, 0.06
    model = noise_model(
        "crossbar",
        drift="constant",
        drift_nu=nu,
        drift_nu_std=0.02,
        t_inference=t,
        t0=t0,
        drift_compensation=compensate,
    )
    assert not model.is_deterministic
    w = weights((128, 256))
    x = torch.randn(512, 256, generator=gen(5))
    clean_out = (x @ w.T).abs().mean()
    drifted = model.sample(w, 4, gen())  # (4, 128, 256)
    ratio = (x @ drifted.transpose(1, 2)).abs().mean() / clean_out
    if compensate:  # exact for mean |W| (the read-out), within a few % for outputs of random inputs
        torch.testing.assert_close(drifted.abs().mean((1, 2)), w.abs().mean().expand(4), rtol=1e-4, atol=0)
        assert abs(ratio.item() - 1) < 0.03
    else:  # E[(t / t0)^-nu] over nu ~ N(0.06, 0.02), about 0.61
        expected = torch.exp(-torch.log(torch.tensor((t + t0) / t0)) * (nu + 0.02 * torch.randn(10**6))).mean()
        assert abs(ratio.item() / expected.item() - 1) < 0.02


def test_pcm_presets_are_random_and_finite() -> None:
    from hardware import preset

    w = weights((64, 64))
    for name in ("pcm_1h", "pcm_1d"):
        model = preset(name)
        assert isinstance(model, Crossbar) and not model.with_sigma(0).is_deterministic  # random drift
        out = model.sample(w, 3, gen())
        assert torch.isfinite(out).all()
        rel = ((out - w).norm() / w.norm()).item()
        assert 0.01 < rel < 1.0  # noisy, but still the same weights


@pytest.mark.parametrize(
    "params, field",
    [
        ({"bits": 7, "bits_per_device": 2}, "bits_per_device"),
        ({"bits_per_device": 2}, "bits_per_device"),
        ({"g_min": 5.0, "g_max": 1.0}, "g_max"),
        ({"p_stuck_off": 0.6, "p_stuck_on": 0.6}, "p_stuck_off"),
        ({"prog_noise": "rram"}, "prog_noise"),
    ],
)
def test_invalid_settings(params: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field) as err:
        noise_model("crossbar", **params)
    assert "\n" not in str(err.value)
