"""The control variate (hardware/control.py): exact known mean, unbiased adjusted estimate, less variance."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hardware import RobustnessCurve, control_adjusted, noise_model, paired_differences, prepare, robustness_curve
from hardware.control import _margin_jacobian, _margin_jacobian_func, margin_control


def setup(seed: int = 0, n: int = 300) -> tuple[nn.Module, DataLoader]:
    """A small CNN (conv, BatchNorm, hidden Linear, Linear head), labels from the CNN itself."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 5),
    )  # fmt: skip
    model[1].running_mean.normal_()
    model.eval()
    x = torch.randn(n, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(-1)
    return model, DataLoader(TensorDataset(x, y), batch_size=128)


def test_control_adjusted_is_a_leave_one_group_out_regression() -> None:
    rng = np.random.default_rng(0)
    c = rng.normal(size=12)
    a = 0.5 + 2 * c + 0.1 * rng.normal(size=12)
    for group in (1, 2):
        got = control_adjusted(list(a), list(c), group)
        ga, gc = a.reshape(-1, group).mean(1), c.reshape(-1, group).mean(1)
        for k in range(12):
            rest = np.delete(np.arange(len(ga)), k // group)
            beta = np.cov(ga[rest], gc[rest])[0, 1] / np.var(gc[rest], ddof=1)
            assert got[k] == pytest.approx(a[k] - beta * c[k])
    assert np.std(control_adjusted(list(a), list(c))) < 0.1 * np.std(a)
    assert control_adjusted([0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 2.0, 0.0], 2) == [0.1, 0.2, 0.3, 0.4]  # 2 groups
    assert control_adjusted([0.1, 0.2, 0.3], [0.0, 0.0, 0.0]) == [0.1, 0.2, 0.3]  # a constant control
    with pytest.raises(ValueError, match="same length"):
        control_adjusted([0.1, 0.2], [0.0])


@pytest.mark.parametrize("channels_last", [False, True])
def test_per_image_jacobian_from_hooks_matches_torch_func(channels_last: bool) -> None:
    model, loader = setup()
    x = torch.cat([x for x, _ in loader])[:40]
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    with torch.no_grad():
        y = model(x).argmax(-1)
    e = torch.eye(5)[y] - torch.eye(5)[(y + 1) % 5]
    layers = [model[0], model[4], model[6]]
    fast, slow = _margin_jacobian(model, x, e, layers), _margin_jacobian_func(model, x, e, layers)
    assert fast.shape == (40, 54 + 384 * 32 + 32 * 5)
    assert torch.allclose(fast, slow, atol=1e-5 * float(slow.detach().abs().max()))


@pytest.mark.parametrize(("name", "conditional"), [("additive", True), ("multiplicative", False), ("lognormal", False)])
def test_the_surrogate_has_the_stated_mean(name: str, conditional: bool) -> None:
    """Over 4000 draws z ~ N(0, I) the controls c(z) - E[c] average to 0 within 4 standard errors."""
    model, loader = setup()
    noise = noise_model(name)
    with prepare(model, loader, path="loop") as prepared:
        form = prepared.deployed.flat_form(noise)
        ctl = margin_control(prepared, noise, form, conditional)
        z = torch.randn(4000, len(form.scale), generator=torch.Generator().manual_seed(5))
        for sigma in (0.1, 0.4):
            c = ctl.controls(ctl.reduce(z), sigma)
            assert statistics.stdev(c) > 1e-3  # the control does vary
            assert abs(statistics.mean(c)) < 4 * statistics.stdev(c) / math.sqrt(len(c))


def test_adjusted_mean_is_unbiased_over_many_seeds() -> None:
    """With 6 draws per evaluation (where a coefficient fitted on all draws would bias the mean most),
    the adjusted means of 100 seeds agree with the plain Monte Carlo means of the same seeds."""
    model, loader = setup()
    noise = noise_model("additive")
    diffs = []
    with prepare(model, loader) as prepared:
        for seed in range(100):
            cv = prepared.curve(noise, [0.3], 6, seed, control=True).points[0]
            plain = prepared.curve(noise, [0.3], 6, seed, control=False).points[0]
            assert cv.accuracies == plain.accuracies
            diffs.append(cv.mean - plain.mean)
    mean, half = statistics.mean(diffs), 4 * statistics.stdev(diffs) / math.sqrt(len(diffs))
    assert abs(mean) < half, (mean, half)


def test_control_lowers_the_variance_of_a_curve_and_of_a_paired_difference() -> None:
    model, loader = setup()
    other, _ = setup(seed=1)
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other[4].weight.mul_(1.5)  # a second model on the same data, correlated with the first
    noise = noise_model("additive")
    a = robustness_curve(model, loader, noise, [0.3], 200, 3).points[0]
    b = robustness_curve(other, loader, noise, [0.3], 200, 3).points[0]
    assert statistics.variance(a.adjusted) < 0.7 * statistics.variance(a.accuracies)
    raw = [x - y for x, y in zip(a.accuracies, b.accuracies, strict=True)]
    adjusted = paired_differences(a, b)
    assert statistics.variance(adjusted) < 0.8 * statistics.variance(raw)
    se = statistics.stdev(raw) / math.sqrt(200)
    assert abs(statistics.mean(adjusted) - statistics.mean(raw)) < 4 * se
    plain = robustness_curve(model, loader, noise, [0.3], 200, 3, control=False).points[0]
    assert paired_differences(plain, plain) == [0.0] * 200  # no controls: the plain differences
    with pytest.raises(ValueError, match="same draws"):
        paired_differences(a, robustness_curve(model, loader, noise, [0.3], 10, 3).points[0])


def test_adaptive_mode_stops_on_the_adjusted_ci() -> None:
    model, loader = setup()
    noise = noise_model("additive")
    kw = {"samples": 6, "seed": 0, "target_ci": 0.004, "max_samples": 400}
    cv = robustness_curve(model, loader, noise, [0.3], **kw, control=True).points[0]
    plain = robustness_curve(model, loader, noise, [0.3], **kw, control=False).points[0]
    assert cv.ci95 <= 0.004 and (plain.ci95 <= 0.004 or plain.n_draws == 400)
    assert cv.n_draws < plain.n_draws  # the reduced variance reaches the target with fewer draws
    assert cv.accuracies == plain.accuracies[: cv.n_draws]


def test_curve_json_keeps_adjusted_and_controls_and_reads_old_curves() -> None:
    model, loader = setup()
    curve = robustness_curve(model, loader, noise_model("additive"), [0.0, 0.3], 4, 1, antithetic=True, control=True)
    data = json.loads(json.dumps(curve.to_dict()))
    back = RobustnessCurve.from_dict(data)
    assert back.points[1].adjusted == curve.points[1].adjusted and back.points[1].controls == curve.points[1].controls
    assert back.points[1].antithetic and back.points[0].adjusted is None  # scale 0: one clean draw
    for p in data["points"]:
        del p["adjusted"], p["controls"]
    assert RobustnessCurve.from_dict(data).points[1].adjusted is None


def test_the_control_is_on_by_default_where_it_pays_for_its_set_up() -> None:
    model, loader = setup()
    noise = noise_model("additive")
    with prepare(model, loader) as prepared:
        assert prepared.curve(noise, [0.3], 3, 0).points[0].adjusted is None  # per-epoch validation size
        assert prepared.curve(noise, [0.0, 0.1, 0.3], 12, 0).points[0].adjusted is None  # 24 draws
        curve = prepared.curve(noise, [0.0, 0.1, 0.3], 16, 0)  # 32 draws over the random scales
        assert curve.points[0].adjusted is None and curve.points[1].adjusted is not None
        assert prepared.curve(noise, [0.1, 0.3], 16, 0, antithetic=True).points[0].adjusted is not None
        assert prepared.curve(noise, [0.1, 0.3], 16, 0, control=False).points[0].adjusted is None
        crossbar = noise_model("crossbar")  # no standard form: no z to build a control on
        assert prepared.curve(crossbar, [0.3], 40, 0, control=True).points[0].adjusted is None


def test_loop_and_batched_paths_give_the_same_controls() -> None:
    """The loop path keeps the conv weights channels_last (z in another order than the batched path's
    standard layout): the controls must still be those of the same z."""
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 8 * 8, 5),
    ).eval()  # fmt: skip
    x = torch.randn(200, 1, 8, 8)
    with torch.no_grad():
        loader = DataLoader(TensorDataset(x, model(x).argmax(-1)), batch_size=100)
    noise = noise_model("multiplicative")
    kw = {"samples": 8, "seed": 4, "conditional": False, "control": True}
    with prepare(model, loader, path="loop") as prepared:
        assert prepared.deployed.perm is not None  # the reordering is exercised
        loop = prepared.curve(noise, [0.2, 0.4], **kw)
    batched = robustness_curve(model, loader, noise, [0.2, 0.4], path="batched", **kw)
    for a, b in zip(loop.points, batched.points, strict=True):
        assert a.controls == pytest.approx(b.controls, abs=1e-5) and a.mean == pytest.approx(b.mean, abs=1e-4)
