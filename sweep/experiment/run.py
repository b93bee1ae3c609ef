"""Run one experiment (data, model, noise, method) from its config. Used by `sweep train`, `sweep eval`
and by every Ray Tune trial."""

from __future__ import annotations

import torch
from torch import nn

from hardware import RobustnessCurve, accuracy, robustness_curve
from methods import Report, TrainResult, make_loader, train
from sweep.config import ConfigError, ExperimentConfig
from zoo import DataSplits, build_backbone, build_data, data_shape


def run_training(
    cfg: ExperimentConfig,
    data: DataSplits | None = None,
    report: Report | None = None,
    resume: dict | None = None,
) -> TrainResult:
    data = data if data is not None else build_data(cfg.data)
    check_model_size(cfg, data_shape(data))
    model = build_backbone(cfg.model, data_shape(data), cfg.seed)
    return train(
        model,
        cfg.method,
        cfg.noise,
        data,
        cfg.train,
        seed=cfg.seed,
        eval_seed=cfg.eval.seed,
        report=report,
        resume=resume,
    )


MAX_PARAMETERS = 10**9
"""Beyond this (4 GB of float32 weights, three times more with gradients and Adam's moments) a model is
a typo such as `hidden: [1e12]`, not an experiment."""


def check_model_size(cfg: ExperimentConfig, shape: dict[str, int]) -> None:
    """Count the model's parameters on the meta device (no memory) and refuse an absurd size in one line."""
    with torch.device("meta"):
        probe = build_backbone(cfg.model, shape, cfg.seed)
    count = sum(p.numel() for p in probe.parameters())
    if count > MAX_PARAMETERS:
        raise ConfigError(
            f"model.options: {cfg.model.name} with {cfg.model.options} has {count:.3g} parameters; "
            f"at most {MAX_PARAMETERS:.0e}"
        )


def test_curve(model: nn.Module, data: DataSplits, cfg: ExperimentConfig, split: str = "test") -> RobustnessCurve:
    """The final robustness curve on the test split (validation with split='val'), common random numbers."""
    dataset = data.test if split == "test" else data.val
    loader = make_loader(dataset, cfg.train.eval_batch_size, shuffle=False)
    e = cfg.eval
    return robustness_curve(
        model, loader, cfg.noise, e.scales, e.samples, e.seed, target_ci=e.target_ci, max_samples=e.max_samples
    )


def clean_test_accuracy(model: nn.Module, data: DataSplits, cfg: ExperimentConfig, curve: RobustnessCurve) -> float:
    """Test accuracy with the clean weights: the curve's point at scale 0 when it has one (the same forward),
    else one clean pass over the test split."""
    for point in curve.points:
        if point.scale == 0:
            return point.mean
    return accuracy(model, make_loader(data.test, cfg.train.eval_batch_size, shuffle=False))
