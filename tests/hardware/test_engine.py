"""Monte Carlo robustness curves: statistics, adaptive sampling, restore, paths, serialization."""

from __future__ import annotations

import json
import math
import statistics

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hardware import (
    NOISE_MODELS,
    RobustnessCurve,
    accuracy,
    analog_layers,
    control_adjusted,
    draw_generator,
    format_curve_table,
    layout,
    mean_ci95,
    noise_model,
    perturbed,
    prepare,
    robustness_curve,
    t_quantile,
)
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
    curve = robustness_curve(model, loader, noise, [0.0, 0.2, 0.5], samples=6, seed=1, control=True)
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert curve.scales == [0.0, 0.2, 0.5]
    zero, mid, high = curve.points
    assert (zero.n_draws, zero.mean, zero.std, zero.ci95) == (1, 1.0, 0.0, 0.0)  # scale 0: one draw
    assert mid.n_draws == high.n_draws == 6
    assert 1.0 > mid.mean > high.mean
    accs = mid.accuracies
    mean = sum(accs) / 6
    std = math.sqrt(sum((a - mean) ** 2 for a in accs) / 5)
    # the control variate: mean and CI of the adjusted draws, std and min of the draws
    assert mid.adjusted is not None and len(mid.adjusted) == len(mid.controls) == 6
    assert mid.adjusted == pytest.approx(control_adjusted(accs, mid.controls))
    assert mid.mean == pytest.approx(statistics.mean(mid.adjusted)) and mid.mean != pytest.approx(mean)
    assert mid.ci95 == pytest.approx(mean_ci95(mid.adjusted)[1])
    assert mid.std == pytest.approx(std) and mid.min == min(accs)
    plain = robustness_curve(model, loader, noise, [0.2], samples=6, seed=1).points[0]  # 6 draws: no control
    assert plain.accuracies == accs and plain.adjusted is None and plain.controls is None
    assert plain.mean == pytest.approx(mean) and plain.std == pytest.approx(std) and plain.min == min(accs)
    assert not plain.antithetic and plain.ci95 == pytest.approx(t_quantile(5) * std / math.sqrt(6))
    assert t_quantile(5) == pytest.approx(2.5706, abs=1e-4)
    paired = robustness_curve(model, loader, noise, [0.2], samples=6, seed=1, antithetic=True, control=False).points[0]
    pair_means = [(a + b) / 2 for a, b in zip(paired.accuracies[::2], paired.accuracies[1::2], strict=True)]
    assert paired.antithetic and paired.accuracies[0] == accs[0]  # draw 0 is the same z either way
    assert paired.ci95 == pytest.approx(mean_ci95(pair_means)[1])  # the CI is over the 3 pair means
    assert paired.ci95 == pytest.approx(t_quantile(2) * statistics.stdev(pair_means) / math.sqrt(3))
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


@pytest.mark.parametrize("name", NOISE_MODELS.names())
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


@pytest.mark.parametrize("name", NOISE_MODELS.names())
def test_batched_path_gives_the_loop_path_draws(name: str) -> None:
    model, loader = setup()
    noise = noise_model(name, sigma=0.3)
    loop = robustness_curve(model, loader, noise, [0.3], samples=5, seed=2, path="loop", conditional=False)
    batched = robustness_curve(model, loader, noise, [0.3], samples=5, seed=2, path="batched", draw_batch=2)
    assert loop.points[0].accuracies == pytest.approx(batched.points[0].accuracies, abs=1 / 300 + 1e-9)


def test_adaptive_sampling_stops_at_target_or_limit() -> None:
    model, loader = setup()
    noise = noise_model("additive")
    for samples, step in ((4, 2), (3, 1)):  # antithetic pairs for an even count, single draws for an odd one
        curve = robustness_curve(
            model, loader, noise, [0.2, 0.6], samples=samples, seed=0, target_ci=0.03, max_samples=40, antithetic=True
        )
        for p in curve.points:
            assert samples <= p.n_draws <= 40 and p.antithetic == (step == 2) and p.n_draws % step == 0
            assert p.ci95 <= 0.03 or p.n_draws == 40
            if p.n_draws > samples:  # it stopped at the first draw (pair) that met the target
                shorter = robustness_curve(
                    model, loader, noise, [p.scale], samples=p.n_draws - step, seed=0, antithetic=step == 2
                )
                assert shorter.points[0].ci95 > 0.03
                assert shorter.points[0].accuracies == p.accuracies[:-step]
    capped = robustness_curve(
        model, loader, noise, [0.6], samples=4, seed=0, target_ci=1e-6, max_samples=7, antithetic=True
    )
    assert capped.points[0].n_draws == 6  # the limit rounds down to whole pairs
    single = robustness_curve(model, loader, noise, [0.6], samples=4, seed=0, target_ci=1e-6, max_samples=7)
    assert single.points[0].n_draws == 7 and not single.points[0].antithetic  # the default: single draws


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


def test_a_draw_is_one_normal_vector_over_the_noisy_layers_in_module_order() -> None:
    """The draw contract: draw k of a standard-form model is randn(n_noisy) from draw_generator(seed, k),
    split over the noisy layers in module order, each in its standard layout (whatever the model's)."""
    model, _ = setup()
    clean = [m.weight.detach().clone() for _, m in analog_layers(model)]
    sizes = [w.numel() for w in clean]
    for fmt in (torch.contiguous_format, torch.channels_last):
        model = model.to(memory_format=fmt)
        for noise in (noise_model("additive", sigma=0.3), noise_model("lognormal", sigma=0.3, digital_first=True)):
            noisy = clean[1:] if noise.digital_first else clean
            z = torch.randn(sum(w.numel() for w in noisy), generator=draw_generator(4, 2)).split(sizes[-len(noisy) :])
            with perturbed(model, noise, draw_generator(4, 2)):
                got = [m.weight.detach().clone() for _, m in analog_layers(model)]
            pairs = zip(noisy, z, strict=True)
            expected = [noise.standard_form(w).apply(zi.view(w.shape), noise.sigma) for w, zi in pairs]
            if noise.digital_first:
                expected = [clean[0], *expected]
            for g, e in zip(got, expected, strict=True):
                assert torch.equal(g, e)


def test_antithetic_draws_are_z_and_minus_z_and_reuse_z_at_every_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    model, loader = setup()
    written: list[tuple[float, torch.Tensor]] = []
    from hardware.deployed import Deployed

    original = Deployed.write_form

    def spy(self, form, span, z, sigma):  # noqa: ANN001, ANN202
        written.append((sigma, z.clone()))
        original(self, form, span, z, sigma)

    monkeypatch.setattr(Deployed, "write_form", spy)
    robustness_curve(model, loader, noise_model("multiplicative"), [0.1, 0.3], samples=4, seed=9, antithetic=True)
    assert [s for s, _ in written] == [0.1, -0.1, 0.3, -0.3] * 2  # pair j at every scale, then pair j + 1
    for j in range(2):
        block = [z for _, z in written[4 * j : 4 * j + 4]]
        assert all(torch.equal(block[0], z) for z in block)  # z drawn once per pair, reused at both scales
    assert not torch.equal(written[0][1], written[4][1])


def test_one_prepared_model_serves_several_noise_models_and_settings() -> None:
    """k settings on one prepared model: the data loader is read once and each curve is the curve
    robustness_curve gives on its own."""
    model, loader = setup()
    noises = [noise_model("additive"), noise_model("lognormal", digital_last=True), noise_model("crossbar")]
    one_pass = iter(list(loader))  # an iterator: a second pass over the data would find it empty
    with prepare(model, one_pass) as prepared:
        curves = [prepared.curve(n, [0.0, 0.2, 0.4], samples=4, seed=3, antithetic=True) for n in noises]
        clean = prepared.clean_accuracy()
    assert clean == 1.0
    for noise, curve in zip(noises, curves, strict=True):
        alone = robustness_curve(model, loader, noise, [0.0, 0.2, 0.4], samples=4, seed=3, antithetic=True)
        assert [p.accuracies for p in curve.points] == [p.accuracies for p in alone.points]
    assert curves[0].points[1].antithetic and not curves[2].points[1].antithetic  # crossbar: no standard form


@pytest.mark.parametrize("name", ["additive", "multiplicative"])
def test_conditional_accuracy_integrates_the_output_layers_noise_exactly(name: str) -> None:
    """With noise on the output layer only, each draw's conditional accuracy is the exact expected
    accuracy: every draw gives the same number, the mean of many plain draws."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 5)).eval()
    x = torch.randn(400, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(-1)
    loader = DataLoader(TensorDataset(x, y), batch_size=128)
    noise = noise_model(name)
    exact = robustness_curve(model, loader, noise, [0.3], samples=3, seed=0).points[0]
    assert exact.conditional and exact.std == pytest.approx(0.0, abs=1e-6)
    plain = robustness_curve(model, loader, noise, [0.3], samples=400, seed=1, conditional=False).points[0]
    assert not plain.conditional and 0.5 < plain.mean < 0.99
    assert exact.mean == pytest.approx(plain.mean, abs=4 * plain.std / math.sqrt(400))


def test_conditional_accuracy_keeps_the_mean_and_shrinks_the_spread() -> None:
    model, loader = setup()
    noise = noise_model("additive")
    cond = robustness_curve(model, loader, noise, [0.4], samples=60, seed=0).points[0]
    plain = robustness_curve(model, loader, noise, [0.4], samples=60, seed=0, conditional=False).points[0]
    assert cond.conditional and cond.std < plain.std
    assert abs(cond.mean - plain.mean) < 2 * math.hypot(cond.ci95, plain.ci95)


def test_no_conditional_accuracy_where_it_does_not_apply() -> None:
    model, loader = setup()
    for noise in (noise_model("lognormal"), noise_model("additive", digital_last=True), noise_model("crossbar")):
        assert not robustness_curve(model, loader, noise, [0.3], samples=2, seed=0).points[0].conditional
    softmax = nn.Sequential(*model, nn.Softmax(-1))  # the output layer's output is not the model's
    assert (
        not robustness_curve(softmax, loader, noise_model("additive"), [0.3], samples=2, seed=0).points[0].conditional
    )
