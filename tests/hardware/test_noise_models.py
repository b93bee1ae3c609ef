"""Contract tests over every registered noise model, and each simple model against its closed form."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import TypeAdapter

import hardware
from hardware import NOISE_MODELS, noise_model

NAMES = NOISE_MODELS.names()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def weight() -> torch.Tensor:
    return torch.randn(16, 8, 3, 3, generator=gen(1))


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape_dtype_and_no_grad(name: str, weight: torch.Tensor) -> None:
    w = weight.clone().requires_grad_()
    out = noise_model(name, sigma=0.1).sample(w, 5, gen())
    assert out.shape == (5, *w.shape) and out.dtype == w.dtype and not out.requires_grad
    assert not torch.equal(out[0], out[1])  # draws differ


@pytest.mark.parametrize("name", NAMES)
def test_zero_sigma_is_identity(name: str, weight: torch.Tensor) -> None:
    model = noise_model(name, sigma=0.0)
    assert model.is_identity and model.is_deterministic
    torch.testing.assert_close(model.sample(weight, 3, gen()), weight.expand(3, *weight.shape))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_numbers_and_sampler_matches(name: str, weight: torch.Tensor) -> None:
    model = noise_model(name, sigma=0.2)
    a, b = model.sample(weight, 2, gen(7)), model.sample(weight, 2, gen(7))
    assert torch.equal(a, b)
    out = torch.empty_like(weight)
    draw = model.sampler(weight)
    draw(out, gen(7))
    assert torch.equal(out, model.sample(weight, 1, gen(7))[0])  # the fast path draws the same numbers
    draw(out, gen(7))
    assert torch.equal(out, a[0])  # and can be called again


@pytest.mark.parametrize("name", NAMES)
def test_fields_are_documented_and_equations_in_docstring(name: str) -> None:
    cls = NOISE_MODELS.get(name)
    for field, info in cls.model_fields.items():
        assert field == "name" or info.description, f"{name}.{field} has no attribute docstring"
    assert "=" in (cls.__doc__ or "") and "sigma" in cls.__doc__


@pytest.mark.parametrize("name", NAMES)
def test_with_sigma_copies_and_validates(name: str) -> None:
    model = noise_model(name, sigma=0.1, digital_first=True)
    other = model.with_sigma(0.3)
    assert (other.sigma, other.digital_first, model.sigma) == (0.3, True, 0.1)
    with pytest.raises(ValueError, match="sigma"):
        model.with_sigma(-1.0)


def test_bad_input_is_one_line_value_error() -> None:
    with pytest.raises(ValueError, match="unknown noise model 'gaussian'; allowed: additive") as err:
        noise_model("gaussian")
    with pytest.raises(ValueError, match="sigma") as err:
        noise_model("additive", sigma=-0.1)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="colour"):
        noise_model("lognormal", colour=1)


@pytest.mark.parametrize("name", NAMES)
def test_the_union_picks_the_member_by_name(name: str) -> None:
    assert hardware.noise_names() == NAMES
    picked = TypeAdapter(NOISE_MODELS.union()).validate_python({"name": name})
    assert type(picked) is NOISE_MODELS.get(name)


@pytest.mark.parametrize("name", NAMES)
def test_standard_form_draws_what_sample_draws(name: str, weight: torch.Tensor) -> None:
    """A model with a standard form (location-scale in z) gives the numbers `sample` gives for the same z
    (up to rounding); the antithetic draw -z is the draw at -sigma, bit for bit (the engine relies on it)."""
    model = noise_model(name, sigma=0.2)
    form = model.standard_form(weight)
    if form is None:
        pytest.skip(f"{name} has no standard form (it draws through its sampler)")
    z = torch.randn(weight.shape, generator=gen(5))
    torch.testing.assert_close(form.apply(z, model.sigma), model.sample(weight, 1, gen(5))[0])
    torch.testing.assert_close(form.apply(z, 0.0), weight)
    torch.testing.assert_close(form.apply(-z, model.sigma), form.apply(z, -model.sigma), rtol=0, atol=0)


# ---------------------------------------------------------------- closed forms over >= 100k weights

N_WEIGHTS = (250, 400)  # 100k weights, 2 draws each


def _uniform_magnitudes() -> torch.Tensor:
    """Weights with |w| in [0.5, 1.5] and random signs, so ratios are well defined."""
    g = gen(3)
    mag = 0.5 + torch.rand(N_WEIGHTS, generator=g)
    return mag * torch.where(torch.rand(N_WEIGHTS, generator=g) < 0.5, -1.0, 1.0)


def _check(values: torch.Tensor, mean: float, std: float, rel_std_tol: float = 0.015) -> None:
    n = values.numel()
    assert abs(values.mean().item() - mean) < 5 * std / math.sqrt(n), (values.mean().item(), mean)
    assert abs(values.std().item() / std - 1) < rel_std_tol, (values.std().item(), std)


def test_additive_closed_form() -> None:
    w = _uniform_magnitudes()
    sigma = 0.2
    noisy = noise_model("additive", sigma=sigma).sample(w, 2, gen())
    _check(noisy - w, 0.0, sigma * w.abs().max().item())


def test_multiplicative_closed_form() -> None:
    w = _uniform_magnitudes()
    sigma = 0.15
    _check(noise_model("multiplicative", sigma=sigma).sample(w, 2, gen()) / w, 1.0, sigma)


def test_lognormal_closed_form() -> None:
    w = _uniform_magnitudes()
    sigma = 0.3
    ratio = noise_model("lognormal", sigma=sigma).sample(w, 2, gen()) / w
    s2 = sigma**2
    _check(ratio, math.exp(s2 / 2), math.sqrt((math.exp(s2) - 1) * math.exp(s2)), rel_std_tol=0.03)
    assert (ratio > 0).all()  # signs never flip


# --------------------------------------------------------------------------------------- presets


@pytest.mark.parametrize("name", sorted(hardware.PRESETS))
def test_presets_build_and_sample(name: str, weight: torch.Tensor) -> None:
    model = hardware.preset(name)
    assert model.name == hardware.PRESETS[name]["name"] and model.sigma > 0
    assert torch.isfinite(model.sample(weight, 2, gen())).all()
    assert hardware.preset(name, sigma=0.05).sigma == 0.05


def test_preset_errors() -> None:
    with pytest.raises(ValueError, match="unknown noise preset 'rram'; allowed: consistency_additive"):
        hardware.preset("rram")
    with pytest.raises(ValueError, match="bits"):
        hardware.preset("nft_rram", bits=7)  # 2-bit devices cannot hold 7 bits
