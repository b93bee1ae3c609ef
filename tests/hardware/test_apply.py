"""Applying noise to a network: which weights, training gradients, evaluation restore, common random numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hardware
from hardware import draw_generator, noise_model, noisy_parameters, noisy_weights, perturbed


def small_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 16),
        nn.ReLU(),
        nn.Linear(16, 3),
    )


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_state(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # bit-identical


def test_noisy_parameters_are_conv_and_linear_weights() -> None:
    model = small_cnn()
    names = list(noisy_parameters(model, noise_model("additive")))
    assert names == ["0.weight", "4.weight", "6.weight"]
    assert list(noisy_parameters(model, noise_model("additive", digital_first=True, digital_last=True))) == ["4.weight"]
    assert noisy_parameters(model, noise_model("additive"))["4.weight"] is model[4].weight


def test_training_gradient_reaches_the_clean_weights() -> None:
    model = small_cnn()
    noise = noise_model("additive", sigma=0.3)
    x = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    clean_out = model(x)
    with noisy_weights(model, noise, torch.Generator().manual_seed(2)):
        noisy = {n: p.detach().clone() for n, p in noisy_parameters(model, noise).items()}
        out = model(x)
        out.square().sum().backward()
    assert not torch.allclose(out, clean_out)
    for name, p in noisy_parameters(model, noise).items():
        assert isinstance(p, nn.Parameter) and p.grad is not None, name  # the Parameters are back
    # the gradient is d loss / d w evaluated at the noisy weights
    twin = small_cnn()
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, w in noisy.items():
            twin.get_parameter(name).copy_(w)
    twin(x).square().sum().backward()
    for name in noisy:
        torch.testing.assert_close(model.get_parameter(name).grad, twin.get_parameter(name).grad)
    assert model[0].bias.grad is not None  # digital parameters train as usual


def test_training_noise_is_fresh_per_entry_and_works_through_wrappers() -> None:
    model = small_cnn()
    wrapper = nn.Sequential(model, nn.Softmax(-1))  # e.g. a method that inserts modules
    noise = noise_model("multiplicative", sigma=0.2)
    x = torch.randn(4, 1, 6, 6)
    with torch.no_grad():
        with noisy_weights(model, noise):
            a = wrapper(x)
        with noisy_weights(model, noise):
            b = wrapper(x)
        clean = wrapper(x)
        with noisy_weights(model, noise.with_sigma(0)):  # identity: a no-op
            assert torch.equal(wrapper(x), clean)
    assert not torch.allclose(a, b) and not torch.allclose(a, clean)


def test_training_context_restores_on_exception() -> None:
    model = small_cnn()
    params = dict(model.named_parameters())
    with pytest.raises(RuntimeError, match="boom"), noisy_weights(model, noise_model("additive", sigma=0.1)):
        raise RuntimeError("boom")
    assert all(p is params[n] for n, p in model.named_parameters())


def test_evaluation_restores_exact_weights_also_on_exception() -> None:
    model = small_cnn().eval()
    before = state(model)
    x = torch.randn(4, 1, 6, 6)
    clean = model(x)
    noise = noise_model("lognormal", sigma=0.2)
    with perturbed(model, noise, draw_generator(0, 0)):
        assert not torch.equal(model[0].weight, before["0.weight"])
        assert torch.equal(model[0].bias, before["0.bias"])  # biases stay digital
        assert not torch.allclose(model(x), clean)
        assert not torch.is_grad_enabled()
    assert_same_state(model, before)
    with pytest.raises(ValueError, match="inside"), perturbed(model, noise, draw_generator(0, 1)):
        raise ValueError("inside")
    assert_same_state(model, before)


def test_draw_generators() -> None:
    a = torch.randn(5, generator=draw_generator(3, 7))
    assert torch.equal(a, torch.randn(5, generator=draw_generator(3, 7)))
    assert not torch.equal(a, torch.randn(5, generator=draw_generator(3, 8)))
    assert not torch.equal(a, torch.randn(5, generator=draw_generator(4, 7)))
    with pytest.raises(ValueError, match="seed"):
        draw_generator(-1, 0)


def test_common_random_numbers_across_scales_and_models() -> None:
    """Draw k sees the same z at every scale and for every model with the same layer shapes."""
    zs = []
    for seed, sigma in ((0, 0.1), (0, 0.4), (1, 0.1)):
        model = small_cnn(seed).eval()
        clean = {n: p.detach().clone() for n, p in noisy_parameters(model, hardware.noise_model("additive")).items()}
        with perturbed(model, noise_model("additive", sigma=sigma), draw_generator(11, 3)):
            zs.append([(model.get_parameter(n) - w) / (sigma * w.abs().max()) for n, w in clean.items()])
    for other in zs[1:]:
        for z0, z1 in zip(zs[0], other, strict=True):
            torch.testing.assert_close(z0, z1, rtol=1e-3, atol=1e-4)


def test_noisy_training_forward_keeps_a_channels_last_layout_and_the_gradient() -> None:
    conv = nn.Conv2d(1, 4, 3).to(memory_format=torch.channels_last)  # one input channel: an ambiguous layout
    stride = conv.weight.stride()
    x = torch.randn(2, 1, 6, 6).contiguous(memory_format=torch.channels_last)
    with noisy_weights(conv, noise_model("additive", sigma=0.1), torch.Generator().manual_seed(0)):
        assert conv.weight.stride() == stride
        conv(x).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
