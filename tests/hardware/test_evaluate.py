"""Monte Carlo robustness curves: statistics, adaptive sampling, restore, paths, serialization."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hardware import (
    RobustnessCurve,
    accuracy,
    draw_generator,
    format_curve_table,
    layout,
    noise_model,
    perturbed,
    robustness_curve,
)
from hardware.evaluate import t_quantile
from hardware.layout import fast_memory_format


def setup(seed: int = 0) -> tuple[nn.Module, DataLoader]:
    """A small CNN and data labelled by the CNN itself: clean accuracy 1, noise lowers it."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8 * 8, 5)
    )
    model[1].running_mean.normal_()  # a non-trivial BatchNorm in eval mode
    model.eval()
    x = torch.randn(300, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(-1)
    return model, DataLoader(TensorDataset(x, y), batch_size=128)


def test_accuracy_restores_mode() -> None:
    model, loader = setup()
    model.train()
    assert accuracy(model, loader) == 1.0 and model.training


def test_curve_statistics_and_restore() -> None:
    model, loader = setup()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    noise = noise_model("additive", sigma=0.3)
    curve = robustness_curve(model, loader, noise, [0.0, 0.2, 0.5], samples=6, seed=1)
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert curve.scales == [0.0, 0.2, 0.5]
    zero, mid, high = curve.points
    assert (zero.n_draws, zero.mean, zero.std, zero.ci95) == (1, 1.0, 0.0, 0.0)  # scale 0: one draw
    assert mid.n_draws == high.n_draws == 6
    assert 1.0 > mid.mean > high.mean
    accs = mid.accuracies
    mean = sum(accs) / 6
    std = math.sqrt(sum((a - mean) ** 2 for a in accs) / 5)
    assert mid.mean == pytest.approx(mean) and mid.std == pytest.approx(std) and mid.min == min(accs)
    assert mid.ci95 == pytest.approx(t_quantile(5) * std / math.sqrt(6))
    assert t_quantile(5) == pytest.approx(2.5706, abs=1e-4)
    auc = ((1.0 + mid.mean) / 2 * 0.2 + (mid.mean + high.mean) / 2 * 0.3) / 0.5
    assert curve.auc == pytest.approx(auc)
    assert curve.noise["name"] == "additive"


def test_same_seed_same_curve_and_paired_draws() -> None:
    model, loader = setup()
    noise = noise_model("multiplicative")
    a = robustness_curve(model, loader, noise, [0.3], samples=4, seed=5)
    b = robustness_curve(model, loader, noise, [0.3], samples=4, seed=5)
    c = robustness_curve(model, loader, noise, [0.3], samples=4, seed=6)
    assert a.points[0].accuracies == b.points[0].accuracies != c.points[0].accuracies
    # draw k is the same draw whatever the number of samples
    d = robustness_curve(model, loader, noise, [0.3], samples=2, seed=5)
    assert d.points[0].accuracies == a.points[0].accuracies[:2]


@pytest.mark.parametrize("name", ["additive", "crossbar"])
def test_fast_memory_format_gives_the_same_draws_and_gives_the_layout_back(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, loader = setup()
    conv = model[0].weight
    assert fast_memory_format(model, conv.device) == torch.channels_last  # the CPU default
    before = conv.detach().clone()
    noise = noise_model(name, sigma=0.3)
    fast = robustness_curve(model, loader, noise, [0.3], samples=6, seed=2, path="loop")
    assert model[0].weight is conv and conv.is_contiguous() and torch.equal(conv, before)
    monkeypatch.setattr(layout, "FAST_MEMORY_FORMAT", {})
    assert fast_memory_format(model, conv.device) is None
    plain = robustness_curve(model, loader, noise, [0.3], samples=6, seed=2, path="loop")
    # the same noise draws; only the convolution's summation order differs, so a rare tie may flip
    assert fast.points[0].accuracies == pytest.approx(plain.points[0].accuracies, abs=1 / 300 + 1e-9)
    assert min(fast.points[0].accuracies) < 1.0  # the noise does bite


def test_a_channels_last_model_keeps_its_layout_and_its_draws() -> None:
    model, loader = setup()
    reference = robustness_curve(model, loader, noise_model("additive", sigma=0.3), [0.3], samples=4, seed=3)
    model = model.to(memory_format=torch.channels_last)
    conv = model[0].weight.detach().clone()
    curve = robustness_curve(model, loader, noise_model("additive", sigma=0.3), [0.3], samples=4, seed=3)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last) and torch.equal(model[0].weight, conv)
    assert curve.points[0].accuracies == reference.points[0].accuracies


def test_deployed_draws_the_same_numbers_into_channels_last_weights() -> None:
    model, _ = setup()
    noise = noise_model("additive", sigma=0.3)
    with perturbed(model, noise, draw_generator(7, 0)):
        plain = model[0].weight.detach().clone()
    model = model.to(memory_format=torch.channels_last)
    with perturbed(model, noise, draw_generator(7, 0)):
        assert torch.equal(model[0].weight, plain)


@pytest.mark.parametrize("name", ["additive", "crossbar"])
def test_batched_path_gives_the_loop_path_draws(name: str) -> None:
    model, loader = setup()
    noise = noise_model(name, sigma=0.3)
    loop = robustness_curve(model, loader, noise, [0.3], samples=5, seed=2, path="loop")
    batched = robustness_curve(model, loader, noise, [0.3], samples=5, seed=2, path="batched", draw_batch=2)
    assert loop.points[0].accuracies == pytest.approx(batched.points[0].accuracies, abs=1 / 300 + 1e-9)


def test_adaptive_sampling_stops_at_target_or_limit() -> None:
    model, loader = setup()
    noise = noise_model("additive")
    curve = robustness_curve(model, loader, noise, [0.2, 0.6], samples=3, seed=0, target_ci=0.03, max_samples=40)
    for p in curve.points:
        assert 3 <= p.n_draws <= 40
        assert p.ci95 <= 0.03 or p.n_draws == 40
        if p.n_draws > 3:  # it stopped at the first draw that met the target
            shorter = robustness_curve(model, loader, noise, [p.scale], samples=p.n_draws - 1, seed=0)
            assert shorter.points[0].ci95 > 0.03
    capped = robustness_curve(model, loader, noise, [0.6], samples=3, seed=0, target_ci=1e-6, max_samples=7)
    assert capped.points[0].n_draws == 7


def test_deterministic_noise_needs_one_draw() -> None:
    model, loader = setup()
    curve = robustness_curve(model, loader, noise_model("crossbar", bits=2), [0.0, 0.1], samples=4, seed=0)
    assert [p.n_draws for p in curve.points] == [1, 4]
    assert curve.points[0].mean < 1.0  # 2-bit quantization alone costs accuracy


def test_json_round_trip_and_table() -> None:
    model, loader = setup()
    curve = robustness_curve(model, loader, noise_model("lognormal"), [0.0, 0.5], samples=1, seed=0)
    assert math.isnan(curve.points[1].ci95)  # one random draw: no interval
    data = json.loads(json.dumps(curve.to_dict(), allow_nan=False))
    assert data["points"][1]["ci95"] is None and data["points"][1]["n_draws"] == 1
    again = RobustnessCurve.from_dict(data)
    assert again.scales == curve.scales and again.auc == curve.auc and math.isnan(again.points[1].ci95)
    table = format_curve_table(curve)
    assert len(table.splitlines()) == 4 and "AUC" in table and "100.00" in table


def test_bad_arguments() -> None:
    model, loader = setup()
    noise = noise_model("additive")
    with pytest.raises(ValueError, match="scales"):
        robustness_curve(model, loader, noise, [], samples=2, seed=0)
    with pytest.raises(ValueError, match="samples"):
        robustness_curve(model, loader, noise, [0.1], samples=0, seed=0)
    with pytest.raises(ValueError, match="target_ci"):
        robustness_curve(model, loader, noise, [0.1], samples=2, seed=0, target_ci=0)
