"""Config validation: every error is one line naming the field and the allowed values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sweep.config import ConfigError, ExperimentConfig, apply_overrides, load_config, validate

ROOT = Path(__file__).resolve().parents[3]


def error_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate(ExperimentConfig, raw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_are_valid_and_complete():
    cfg = ExperimentConfig()
    assert cfg.data.name == "digits" and cfg.model.name == "lenet"
    assert cfg.method.name == "baseline" and cfg.noise.name == "additive"
    assert cfg.eval.scales[0] == 0.0


def test_digits_config_loads():
    cfg = load_config(ROOT / "configs" / "digits.yaml")
    assert cfg.model.name == "lenet" and cfg.data.name == "digits"
    assert cfg.noise.sigma == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"trian": {}}, "trian: unknown key; allowed: data, eval, method, model, noise, seed, train"),
        ({"train": {"epoch": 3}}, "train.epoch: unknown key; allowed: batch_size,"),
        ({"train": {"epochs": "many"}}, "train.epochs: Input should be a valid integer"),
        ({"train": {"epochs": 0}}, "train.epochs: Input should be greater than or equal to 1"),
        ({"train": {"lr": -1}}, "train.lr: Input should be greater than 0"),
        ({"train": {"optimizer": "lion"}}, "train.optimizer: Input should be 'sgd', 'adam' or 'adamw'"),
        ({"data": {"name": "imagenet"}}, "data.name: unknown data set 'imagenet'; allowed: cifar10, cifar100,"),
        ({"model": {"name": "vit"}}, "model.name: unknown model 'vit'; allowed:"),
        ({"model": {"name": "mlp", "options": {"widht": 3}}}, "model 'mlp' has no option 'widht'; allowed:"),
        ({"method": {"name": "magic"}}, "method: Input tag 'magic' found using 'name' does not match any"),
        ({"method": {"name": "baseline", "weight": 1}}, "method.weight: unknown key; allowed: name"),
        ({"noise": {"name": "additive", "sigma": -0.1}}, "noise.sigma: Input should be greater than or equal"),
        ({"noise": {"name": "additive", "sgima": 0.1}}, "noise.sgima: unknown key; allowed:"),
        ({"noise": {"preset": "nope"}}, "unknown noise preset 'nope'; allowed:"),
        ({"eval": {"scales": [0.2, 0.1]}}, "eval.scales: must be a non-empty, strictly increasing list"),
    ],
)
def test_errors_name_the_field_and_allowed_values(raw: dict, expected: str):
    assert expected in error_of(raw)


def test_overrides_are_typed_yaml_and_nest():
    raw = apply_overrides({"train": {"epochs": 3}}, ["train.epochs=5", "method.name=baseline", "eval.scales=[0, 0.1]"])
    assert raw == {"train": {"epochs": 5}, "method": {"name": "baseline"}, "eval": {"scales": [0, 0.1]}}
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        apply_overrides({}, ["train.epochs"])
    with pytest.raises(ConfigError, match="'epochs' is not a mapping"):
        apply_overrides({"train": {"epochs": 3}}, ["train.epochs.x=1"])


def test_preset_expands_and_can_be_overridden():
    import hardware

    name = sorted(hardware.PRESETS)[0]
    cfg = validate(ExperimentConfig, {"noise": {"preset": name}})
    assert cfg.noise.name == hardware.PRESETS[name]["name"]
    cfg = validate(ExperimentConfig, {"noise": {"preset": name, "sigma": 0.123}})
    assert cfg.noise.sigma == pytest.approx(0.123)


def test_cli_reports_config_errors_in_one_line_with_exit_code_2(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  optimizer: lion\n")
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", "train", str(bad), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "train.optimizer" in lines[0] and "'sgd', 'adam' or 'adamw'" in lines[0]
    assert not (tmp_path / "out").exists()  # nothing started, nothing written
