"""Build one experiment (data, model, noise, method) from its config and run it. Used by
`sweep train` and by every Ray Tune trial."""

from __future__ import annotations

import torch
from torch import nn

from hardware import RobustnessCurve, accuracy, robustness_curve
from methods.datasets import DataSplits, load_dataset
from methods.models import StagedModel, build_model
from methods.train import Report, TrainResult, make_loader, train
from sweep.config import ExperimentConfig


def build_data(cfg: ExperimentConfig) -> DataSplits:
    d = cfg.data
    return load_dataset(
        d.name,
        root=d.root,
        download=d.download,
        augment=d.augment,
        val_fraction=d.val_fraction,
        seed=d.split_seed,
        **d.options,
    )


def data_shape(data: DataSplits) -> dict[str, int]:
    """What a model needs to know about its data (stored in checkpoints to rebuild the model)."""
    return {"in_channels": data.in_channels, "image_size": data.image_size, "num_classes": data.num_classes}


def build_backbone(cfg: ExperimentConfig, shape: dict[str, int]) -> StagedModel:
    torch.manual_seed(cfg.seed)
    return build_model(cfg.model.name, **shape, **cfg.model.options)


def run_training(
    cfg: ExperimentConfig,
    data: DataSplits | None = None,
    report: Report | None = None,
    resume: dict | None = None,
) -> TrainResult:
    data = data if data is not None else build_data(cfg)
    model = build_backbone(cfg, data_shape(data))
    return train(
        model, cfg.method, cfg.noise, data, cfg.train,
        seed=cfg.seed, eval_seed=cfg.eval.seed, report=report, resume=resume,
    )


def test_curve(model: nn.Module, data: DataSplits, cfg: ExperimentConfig, split: str = "test") -> RobustnessCurve:
    """The final robustness curve on the test split (validation with split='val'), common random numbers."""
    dataset = data.test if split == "test" else data.val
    loader = make_loader(dataset, max(cfg.train.batch_size, 256), shuffle=False)
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
    return accuracy(model, make_loader(data.test, max(cfg.train.batch_size, 256), shuffle=False))


def method_summary(cfg: ExperimentConfig) -> dict[str, float]:
    """The method's own scalars after training (e.g. correctnet's placement and added parameters), else {}."""
    summary = getattr(cfg.method, "summary", None)
    return summary() if callable(summary) else {}
