"""`sweep train` end to end: a real CLI process, its checkpoint and metrics, the checkpoint round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sweep.config import load_config
from sweep.experiment import load_checkpoint
from zoo import build_data

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train") / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep",
            "train",
            str(ROOT / "configs" / "digits.yaml"),
            "--set",
            "train.epochs=3",
            "--set",
            "eval.samples=3",
            "--set",
            "eval.scales=[0, 0.1]",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "epoch   3/3" in proc.stdout and "test accuracy" in proc.stdout
    return out


def test_writes_checkpoint_and_metrics(trained: Path):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    assert 0.8 < metrics["test_acc"] <= 1.0
    assert metrics["curve"]["scales"] == [0, 0.1]
    assert len(metrics["curve"]["points"][1]["accuracies"]) == 3
    assert metrics["config"]["train"]["epochs"] == 3


def test_checkpoint_round_trip_gives_the_same_model(trained: Path):
    model, cfg = load_checkpoint(trained / "checkpoint.pt")
    assert cfg.train.epochs == 3 and cfg.model.name == "lenet"
    payload = torch.load(trained / "checkpoint.pt", weights_only=False)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, payload["state_dict"][name]), name
    data = build_data(cfg.data)
    x, y = next(iter(torch.utils.data.DataLoader(data.test, batch_size=len(data.test))))
    accuracy = (model(x).argmax(1) == y).double().mean().item()
    saved = json.loads((trained / "metrics.json").read_text())["test_acc"]
    assert accuracy == pytest.approx(saved, abs=1e-6)


def test_refuses_to_overwrite_a_checkpoint(trained: Path):
    before = (trained / "checkpoint.pt").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", "train", str(ROOT / "configs" / "digits.yaml"), "--out", str(trained)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "already holds a checkpoint" in proc.stderr
    assert (trained / "checkpoint.pt").read_bytes() == before


def test_load_config_applies_overrides():
    cfg = load_config(ROOT / "configs" / "digits.yaml", ["method.name=baseline", "seed=5"])
    assert cfg.seed == 5
