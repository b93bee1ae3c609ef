"""`sweep eval CHECKPOINT`: the robustness curve of a saved model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweep.cli import main
from sweep.config import ExperimentConfig
from sweep.experiment import save_checkpoint
from zoo import build_backbone, build_data, data_shape


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained LeNet on digits: enough to exercise the command (no training needed)."""
    cfg = ExperimentConfig.model_validate({"eval": {"scales": [0.0, 0.1], "samples": 2}})
    shape = data_shape(build_data(cfg.data))
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    return save_checkpoint(path, build_backbone(cfg.model, shape, cfg.seed), cfg, shape)


def test_prints_the_table_and_writes_json(checkpoint: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "curve.json"
    rc = main(["eval", str(checkpoint.parent), "--scales", "0,0.1,0.3", "--samples", "3", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "AUC" in text and len([line for line in text.splitlines() if line.strip().startswith("0.3")]) == 1
    curve = json.loads(out.read_text())["curve"]
    assert curve["scales"] == [0.0, 0.1, 0.3] and [p["n_draws"] for p in curve["points"]] == [1, 3, 3]
    assert curve["seed"] == 1234  # the checkpoint's eval seed


def test_noise_preset_overrides_and_adaptive(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    args = ["eval", str(checkpoint), "--noise", "nft_rram", "--set", "noise.bits=4", "--scales", "0.1"]
    args += ["--samples", "2", "--target-ci", "0.5", "--max-samples", "4", "--seed", "7", "--split", "val"]
    assert main([*args, "--json", str(out)]) == 0
    curve = json.loads(out.read_text())["curve"]
    assert curve["noise"]["name"] == "crossbar" and curve["noise"]["bits"] == 4 and curve["seed"] == 7
    assert 2 <= curve["points"][0]["n_draws"] <= 4


def test_deployment_settings_print_a_table_each_with_axis_and_unit(checkpoint: Path, tmp_path: Path, capsys) -> None:
    from hardware import deploy_settings

    settings = tmp_path / "deploy.yaml"
    settings.write_text("- {name: pcm_time, values: [1, 86400]}\n- {name: attack, values: [0, 0.05], steps: 2}\n")
    out = tmp_path / "d.json"
    assert main(["eval", str(checkpoint), "--deploy", str(settings), "--samples", "2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for s in deploy_settings([{"name": "pcm_time"}, {"name": "attack"}]):
        assert f"{s.key}: {s.axis_label()}" in text  # e.g. "pcm: t (s after programming)"
    assert "1 d" in text  # the time axis reads in durations
    deployed = json.loads(out.read_text())["deploy"]
    assert list(deployed) == ["pcm", "attack"] and deployed["pcm"]["curve"]["scales"] == [1.0, 86400.0]
    assert deployed["attack"]["setting"]["unit"] == "relative |δ|/|θ|, worst case"
    assert deployed["pcm"]["curve"]["seed"] == 1234 and [p["n_draws"] for p in deployed["pcm"]["curve"]["points"]] == [
        2,
        2,
    ]

    # the same settings by --set, and by name with their defaults
    assert main(["eval", str(checkpoint), "--set", "eval.deploy=[{name: attack, values: [0, 0.05], steps: 2}]"]) == 0
    assert "attack: zeta (relative" in capsys.readouterr().out
    assert main(["eval", str(checkpoint), "--deploy", "sigma", "--samples", "1"]) == 0
    assert "additive: sigma (σ of max|W| per layer)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--noise", "gaussian"], "not a noise model or preset"),
        (["--set", "model.name=mlp"], "only noise.*, eval.*, data.* keys"),
        (["--set", "noise.bits=3"], "noise.bits: unknown key"),  # additive has no bits
        (["--scales", "0.1,x"], "comma-separated numbers"),
        (["--scales", "0.2,0.1"], "eval.scales"),
        (
            ["--deploy", "pcm_drift"],
            "eval.deploy: unknown deployment setting 'pcm_drift'; allowed: attack, pcm_time, sigma",
        ),
        (["--deploy", "[{name: attack, steps: 0}]"], "eval.deploy: deployment setting 'attack': steps"),
        (["--deploy", "[1, 2"], "--deploy: not valid YAML/JSON"),
    ],
)
def test_bad_input_is_one_line_exit_2(checkpoint: Path, args: list[str], message: str, capsys) -> None:
    assert main(["eval", str(checkpoint), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_missing_checkpoint(tmp_path: Path, capsys) -> None:
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [(["--scales", "0,1e308"], "scales must be at most 1e+06"), (["--json", "."], "--json .: is a folder")],
)
def test_absurd_scales_and_a_folder_as_json(checkpoint: Path, args: list[str], message: str, capsys) -> None:
    assert main(["eval", str(checkpoint), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
