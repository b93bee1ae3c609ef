"""Optimizers and learning-rate schedules named in the config."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def build_optimizer(
    params: Iterable[nn.Parameter],
    name: str,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """`sgd` (with momentum), `adam` or `adamw`."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown train.optimizer {name!r}; allowed: sgd, adam, adamw")


def build_schedule(
    optimizer: torch.optim.Optimizer, name: str, epochs: int, step_size: int = 30, gamma: float = 0.1
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule: `cosine` annealing to 0 over `epochs`, `step` decay, or `none`."""
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ValueError(f"unknown train.schedule {name!r}; allowed: cosine, step, none")
