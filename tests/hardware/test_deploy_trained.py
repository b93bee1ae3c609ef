"""The attack, PCM over time and flatness on a briefly trained digits LeNet (the project's own
data, model and training loop)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import hardware
from hardware.deploy import PcmTime, WeightAttack, analog_weights, hessian_max_eigenvalue, weight_attack
from hardware.deploy.attack import accuracy_at
from methods import METHODS, TrainConfig, make_loader, train
from zoo import build_model, load_dataset


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, DataLoader, DataLoader]:
    """LeNet (8-16 channels, 32 hidden) after 8 epochs of plain training: about 95% test accuracy."""
    data = load_dataset("digits", root="", download=False, augment=False, val_fraction=0.1, seed=0)
    torch.manual_seed(0)
    model = build_model("lenet", in_channels=1, image_size=8, num_classes=10, channels=[8, 16], hidden=[32])
    noise = hardware.noise_model("additive", sigma=0.0)
    result = train(model, METHODS.build("baseline"), noise, data, TrainConfig(epochs=8), seed=0)
    test = make_loader(data.test, 512, shuffle=False)
    assert hardware.accuracy(result.model, test) > 0.9
    return result.model, test, make_loader(data.train, 256, shuffle=False)


def random_sign_accuracies(model: nn.Module, loader: DataLoader, zeta: float, draws: int) -> list[float]:
    """Accuracies under delta = +-zeta |theta| with independent uniform random signs (the box's corners)."""
    weights, batches, generator = analog_weights(model), list(loader), torch.Generator().manual_seed(0)
    accs = []
    for _ in range(draws):
        delta = {
            n: zeta * w.detach().abs() * (torch.randint(0, 2, w.shape, generator=generator) * 2 - 1)
            for n, w in weights.items()
        }
        accs.append(accuracy_at(model, batches, weights, delta))
    return accs


def test_attack_is_at_least_as_harmful_as_random_perturbations_of_its_size(trained) -> None:
    model, test, _ = trained
    model.eval()
    zetas = [0.02, 0.05, 0.1]
    curve = WeightAttack(values=[0.0, *zetas]).evaluate(model, test, samples=1, seed=0)
    clean = hardware.accuracy(model, test)
    assert curve.points[0].accuracies == [clean]  # zeta = 0 is exactly the clean accuracy
    for zeta, point in zip(zetas, curve.points[1:], strict=True):
        random = random_sign_accuracies(model, test, zeta, draws=100)
        assert point.mean <= sum(random) / len(random), (zeta, point.accuracies)
        assert point.mean <= min(random)  # the attack beats even the luckiest of 100 random draws
    assert curve.points[-1].mean < clean - 0.2  # at zeta = 0.1 the targeted attack is far from harmless
    assert curve.means == sorted(curve.means, reverse=True)


def test_attack_stays_in_the_box_is_deterministic_and_leaves_the_weights(trained) -> None:
    model, test, _ = trained
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    weights, batches = analog_weights(model), list(test)

    def attack(zeta: float, seed: int) -> dict[str, torch.Tensor]:
        return weight_attack(model, batches, weights, zeta, steps=5, generator=hardware.draw_generator(seed, 0))

    delta = attack(0.05, 1)
    assert all((delta[n].abs() <= 0.05 * w.detach().abs()).all() for n, w in weights.items())
    assert all(torch.equal(delta[n], d) for n, d in attack(0.05, 1).items())
    assert not all(torch.equal(delta[n], d) for n, d in attack(0.05, 2).items())
    zero = attack(0.0, 1)
    assert all(not d.any() for d in zero.values())
    assert accuracy_at(model, batches, weights, zero) == hardware.accuracy(model, test)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    analog = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert set(weights) == analog and len(analog) == 4  # conv1, conv2, fc1, head; no BatchNorm, no bias


def test_pcm_accuracy_without_compensation_does_not_rise_with_time(trained) -> None:
    model, test, _ = trained
    setting = PcmTime(drift_compensation=False)
    curve = setting.evaluate(model, test, samples=4, seed=0)
    for k in range(4):
        per_draw = [p.accuracies[k] for p in curve.points]  # one chip, read later and later
        assert per_draw == sorted(per_draw, reverse=True), per_draw
    assert curve.points[-1].mean < curve.points[0].mean - 0.2  # a year of uncompensated drift hurts
    compensated = PcmTime().evaluate(model, test, samples=4, seed=0)
    assert compensated.points[-1].mean > curve.points[-1].mean + 0.2
    assert setting.auc(curve) < setting.auc(compensated)


def test_flatness_is_finite_positive_and_deterministic(trained) -> None:
    model, _, train_loader = trained
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = hessian_max_eigenvalue(model, train_loader, seed=3)
    assert math.isfinite(first.lambda_max) and first.lambda_max > 0
    assert first.examples == 1024 and (first.rel_change < 1e-4 or first.iterations == 20)
    assert hessian_max_eigenvalue(model, train_loader, seed=3) == first
    full = hessian_max_eigenvalue(model, train_loader, seed=3, iterations=first.iterations + 5, tol=None)
    assert full.iterations == first.iterations + 5 and full.lambda_max == pytest.approx(first.lambda_max, rel=1e-3)
    assert hessian_max_eigenvalue(model, train_loader, seed=4).lambda_max == pytest.approx(first.lambda_max, rel=0.05)
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_flatness_matches_the_exact_hessian_of_a_tiny_network() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3))
    x, y = torch.randn(40, 3), torch.randint(0, 3, (40,))
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])

    def loss(theta: torch.Tensor) -> torch.Tensor:
        params, i = {}, 0
        for n, s in zip(names, shapes, strict=True):
            params[n] = theta[i : i + s.numel()].view(s)
            i += s.numel()
        return nn.functional.cross_entropy(torch.func.functional_call(model, params, (x,)), y)

    eigenvalues = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat))
    top = eigenvalues[eigenvalues.abs().argmax()]
    loader = DataLoader(list(zip(x, y, strict=True)), batch_size=16)  # three batches, unequal sizes
    result = hessian_max_eigenvalue(model, loader, batches=3, iterations=300, tol=None)
    assert result.examples == 40
    assert result.lambda_max == pytest.approx(float(top), rel=1e-3)
