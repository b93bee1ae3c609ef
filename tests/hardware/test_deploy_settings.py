"""Contract of every deployment setting (loops over the registry): dict round trip, axis and unit,
one-line errors, x values, restore, and paired draws across models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hardware
import hardware.seeds
from hardware import CurvePoint, RobustnessCurve, robustness_curve
from hardware.deploy import (
    DEPLOY_SETTINGS,
    DeploySetting,
    deploy_setting,
    deploy_settings,
    format_setting_table,
    setting_names,
)

NAMES = setting_names()


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8 * 8, 5)
    )
    model[1].running_mean.normal_()
    return model


def make_loader() -> DataLoader:
    """Inputs labelled by model 0: its clean accuracy is 1, noise lowers it."""
    x = torch.randn(200, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = make_model(0).eval()(x).argmax(-1)
    return DataLoader(TensorDataset(x, y), batch_size=64)


def small(name: str) -> DeploySetting:
    """The member with its default fields except three axis values (the first, middle and last)."""
    values = DEPLOY_SETTINGS.build(name).values
    return deploy_setting({"name": name, "values": [values[0], values[len(values) // 2], values[-1]]})


def test_registry_has_the_issue_members() -> None:
    assert {"sigma", "pcm_time", "attack"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_dict_round_trip_through_json_and_yaml(name: str) -> None:
    setting = DEPLOY_SETTINGS.build(name)
    data = setting.to_dict()
    assert data["name"] == name
    assert deploy_setting(json.loads(json.dumps(data))) == setting
    assert deploy_setting(yaml.safe_load(yaml.safe_dump(data))) == setting
    assert deploy_setting(data).to_dict() == data


@pytest.mark.parametrize("name", NAMES)
def test_axis_unit_and_key(name: str) -> None:
    setting = DEPLOY_SETTINGS.build(name)
    assert setting.axis and setting.unit and setting.key
    assert setting.axis_label() == f"{setting.axis} ({setting.unit})"
    described = setting.describe()
    assert (described["axis"], described["unit"], described["key"]) == (setting.axis, setting.unit, setting.key)
    assert deploy_setting({**setting.to_dict(), "label": "chip-A.1"}).key == "chip-A.1"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"values": []}, "values"),
        ({"values": [0.3, 0.2]}, "values"),
        ({"bogus": 1}, "bogus"),
        ({"label": "a b"}, "label"),
    ],
)
def test_bad_fields_are_one_line_naming_the_field(name: str, change: dict, field: str) -> None:
    with pytest.raises(ValueError) as err:
        deploy_setting({"name": name, **change})
    message = str(err.value)
    assert "\n" not in message and f"deployment setting {name!r}: {field}:" in message


def test_bad_names_and_duplicate_keys() -> None:
    with pytest.raises(ValueError, match="allowed: " + ", ".join(NAMES)):
        deploy_setting({"name": "pcm_drift"})
    with pytest.raises(ValueError, match="name: missing"):
        deploy_setting({"values": [1.0]})
    with pytest.raises(ValueError, match="'additive' is used twice"):
        deploy_settings([{"name": "sigma"}, {"name": "sigma", "values": [0.1]}])
    both = deploy_settings([{"name": "pcm_time"}, {"name": "pcm_time", "drift_compensation": False}])
    assert [s.key for s in both] == ["pcm", "pcm_nocomp"]


@pytest.mark.parametrize("name", NAMES)
def test_curve_on_the_axis_and_model_restored(name: str) -> None:
    setting, loader, model = small(name), make_loader(), make_model(0)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    curve = setting.evaluate(model, loader, samples=3, seed=11)
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert curve.scales == setting.values and curve.seed == 11
    assert curve.noise == setting.describe()
    assert all(0 <= a <= 1 for p in curve.points for a in p.accuracies)
    assert all(p.n_draws in (1, setting.draws(3)) for p in curve.points)
    assert min(curve.means) < 1.0  # the setting does perturb the model that labelled the data
    assert setting.auc(curve) == pytest.approx(setting.auc(type(curve).from_dict(curve.to_dict())))
    table = format_setting_table(setting, curve).splitlines()
    assert table[0] == f"{setting.key}: {setting.axis_label()}" and table[1].split()[0] == setting.axis
    assert len(table) == len(setting.values) + 3 and f"{100 * setting.auc(curve):.2f}%" in table[-1]


@pytest.mark.parametrize("name", ["sigma", "pcm_time"])
def test_own_samples_replace_the_evaluations(name: str) -> None:
    setting = deploy_setting({**small(name).to_dict(), "samples": 2})
    curve = setting.evaluate(make_model(0), make_loader(), samples=5, seed=11)
    default = small(name).evaluate(make_model(0), make_loader(), samples=5, seed=11)
    assert [p.n_draws for p in curve.points] == ([1, 2, 2] if name == "sigma" else [2, 2, 2])  # sigma 0: exact
    assert [p.accuracies for p in curve.points] == [p.accuracies[:2] for p in default.points]  # draws 0 and 1


def test_sigma_setting_of_the_training_noise_is_todays_curve() -> None:
    noise = hardware.noise_model("lognormal", sigma=0.2, digital_first=True)
    setting = deploy_setting({"name": "sigma", "noise": noise.model_dump(mode="json", exclude={"sigma"})})
    loader, model = make_loader(), make_model(0)
    today = robustness_curve(model, loader, noise, setting.values, 4, 9, target_ci=0.05, max_samples=12)
    curve = setting.evaluate(model, loader, samples=4, seed=9, target_ci=0.05, max_samples=12)
    assert [p.accuracies for p in curve.points] == [p.accuracies for p in today.points]
    assert setting.key == "lognormal" and setting.unit == "σ of ln w, w·exp(σz)"


def test_auc_is_over_log_time_and_times_read_as_durations() -> None:
    setting = deploy_setting({"name": "pcm_time", "values": [1.0, 3600.0, 86400.0, 2592000.0, 31536000.0]})
    assert [setting.format_value(t) for t in setting.values] == ["1 s", "1 h", "1 d", "30 d", "1 y"]
    means = [1.0, 0.8, 0.6, 0.4, 0.2]
    points = [CurvePoint.from_accuracies(t, [a], True) for t, a in zip(setting.values, means, strict=True)]
    curve = RobustnessCurve(setting.describe(), 0, points)
    logs = np.log10(setting.values)
    assert setting.auc(curve) == pytest.approx(np.trapezoid(means, logs) / (logs[-1] - logs[0]))
    assert curve.auc < setting.auc(curve)  # the linear AUC is dominated by the last month to a year
    linear = deploy_setting({"name": "sigma", "values": [0.0, 0.1, 0.4]})
    flat = RobustnessCurve({}, 0, [CurvePoint.from_accuracies(s, [1 - s], True) for s in linear.values])
    assert linear.auc(flat) == pytest.approx(flat.auc)


@pytest.mark.parametrize("name", NAMES)
def test_paired_draws_across_models(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two trials see the same draws: the same (seed, k) sequence for two different models, and a
    model's per-draw accuracies do not depend on what was evaluated before it."""
    setting, loader = small(name), make_loader()
    a, b = make_model(0), make_model(1)
    calls: list[tuple[int, int]] = []
    original = hardware.seeds.draw_seed
    monkeypatch.setattr(hardware.seeds, "draw_seed", lambda seed, k: calls.append((seed, k)) or original(seed, k))

    first = setting.evaluate(a, loader, samples=3, seed=5)
    seeds_a, calls[:] = list(calls), []
    setting.evaluate(b, loader, samples=3, seed=5)
    seeds_b, calls[:] = list(calls), []
    again = setting.evaluate(a, loader, samples=3, seed=5)
    assert seeds_a and seeds_a == seeds_b and {s for s, _ in seeds_a} == {5}
    assert [p.accuracies for p in again.points] == [p.accuracies for p in first.points]

    fewer = setting.evaluate(a, loader, samples=2, seed=5)
    for p, q in zip(fewer.points, first.points, strict=True):
        assert p.accuracies == q.accuracies[: len(p.accuracies)]  # draw k is draw k whatever the count
    calls[:] = []
    setting.evaluate(a, loader, samples=3, seed=6)
    assert calls == [(6, k) for _, k in seeds_a]  # another eval seed: other draws, same indices
