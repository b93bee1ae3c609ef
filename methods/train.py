"""The training loop: every method runs in it unchanged. No Ray, no MLflow: it takes a `report` callback."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import hardware
from hardware import NoiseModel, derive_seed, images_to
from methods.base import Method, TrainContext
from methods.optim import build_optimizer, build_schedule
from methods.train_config import TrainConfig, resolve_device
from zoo import DataSplits


@dataclass
class TrainState:
    """Everything needed to resume training after `epoch` completed epochs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    first_loss: float | None = None
    """The loss of the first training batch: the reference of the divergence check."""

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "history": list(self.history),
            "first_loss": self.first_loss,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.first_loss = state.get("first_loss")


@dataclass
class TrainResult:
    model: nn.Module  # the deployable model (method extras stripped)
    history: list[dict[str, float]]
    summary: dict[str, float] = field(default_factory=dict)  # the method's scalars (`Trained.summary`)
    details: dict[str, Any] = field(default_factory=dict)  # the method's other results (`Trained.details`)


DIVERGENCE = 1000.0
"""A training loss above this many times the first batch's loss means the run diverged."""


def check_divergence(loss: float, first: float, epoch: int, method: str) -> None:
    """FloatingPointError when the loss is not finite or exploded (> DIVERGENCE x the first batch's loss,
    which is floored at 0.01 so a near-zero start cannot trip it)."""
    if not math.isfinite(loss):
        raise FloatingPointError(f"loss became {loss} in epoch {epoch} ({method})")
    if loss > DIVERGENCE * max(first, 0.01):
        raise FloatingPointError(
            f"loss diverged to {loss:.3g} in epoch {epoch} ({method}): "
            f"over {DIVERGENCE:g}x the first batch's {first:.3g}"
        )


Report = Callable[[dict[str, float], TrainState], None]


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 0, num_workers: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=num_workers)


def train(
    model: nn.Module,
    method: Method,
    noise: NoiseModel,
    data: DataSplits,
    cfg: TrainConfig,
    *,
    seed: int,
    eval_seed: int = 0,
    report: Report | None = None,
    resume: dict[str, Any] | None = None,
) -> TrainResult:
    """Train `model` with `method` under the training `noise`; call `report` after every epoch.

    Each epoch reseeds torch and the shuffling from (seed, epoch), so a run resumed from a
    `TrainState.state_dict()` continues with exactly the numbers of an uninterrupted run.
    """
    device = resolve_device(cfg.device)
    torch.manual_seed(seed)
    model = method.prepare(model).to(device)
    fmt = training_memory_format(model, device, cfg.memory_format)
    if fmt is not None:
        model = model.to(memory_format=fmt)
    optimizer = build_optimizer(
        [p for p in model.parameters() if p.requires_grad],
        cfg.optimizer,
        cfg.lr,
        weight_decay=cfg.weight_decay,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
    )
    scheduler = build_schedule(optimizer, cfg.schedule, cfg.epochs, cfg.step_size, cfg.gamma)
    state = TrainState(model, optimizer, scheduler)
    if resume is not None:
        state.load_state_dict(resume)

    train_loader = make_loader(data.train, cfg.batch_size, shuffle=True, seed=seed, num_workers=cfg.num_workers)
    val_loader = make_loader(data.val, cfg.eval_batch_size, shuffle=False, num_workers=cfg.num_workers)

    for epoch in range(state.epoch, cfg.epochs):
        torch.manual_seed(derive_seed(seed, epoch))
        train_loader.generator.manual_seed(derive_seed(seed, epoch, 1))
        model.train()
        start = time.perf_counter()
        term_sums: dict[str, float] = defaultdict(float)
        seen = correct = 0
        for x, y in train_loader:
            x, y = images_to(x, device, fmt), y.to(device)  # (B, C, H, W), (B,)
            out = method.step(model, x, y, noise)
            loss = out.loss.item()
            state.first_loss = loss if state.first_loss is None else state.first_loss
            check_divergence(loss, state.first_loss, epoch + 1, method.name)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()

            batch = y.shape[0]
            seen += batch
            correct += (out.logits.argmax(1) == y).sum().item()
            term_sums["loss"] += loss * batch
            for term, value in out.terms.items():
                term_sums[term] += value * batch
        scheduler.step()
        train_time = time.perf_counter() - start

        metrics = {"epoch": epoch + 1, "train_acc": correct / seen, "epoch_time": train_time}
        metrics.update({f"train_{term}": total / seen for term, total in term_sums.items()})
        metrics.update(validate(model, val_loader, noise, cfg.val_noise_samples, eval_seed))
        metrics["lr"] = scheduler.get_last_lr()[0]
        state.epoch = epoch + 1
        state.history.append(metrics)
        if report is not None:
            report(metrics, state)

    if fmt is not None:
        model = model.to(memory_format=torch.contiguous_format)  # checkpoints and users get the usual layout
    ctx = TrainContext(cfg, noise, train_loader, val_loader, device, seed, eval_seed)
    trained = method.after_training(model, ctx)
    return TrainResult(trained.model, state.history, trained.summary, trained.details)


def training_memory_format(model: nn.Module, device: torch.device, name: str) -> torch.memory_format | None:
    """The layout to train `model` in (None: leave it as it is)."""
    if name == "auto":
        return hardware.fast_memory_format(model, device)
    return torch.channels_last if name == "channels_last" else None


def validate(model: nn.Module, loader: DataLoader, noise: NoiseModel, samples: int, eval_seed: int) -> dict[str, float]:
    """Clean validation accuracy and the noisy one at the training scale (common random numbers)."""
    clean = hardware.accuracy(model, loader)
    if noise.sigma == 0:
        return {"val_acc": clean, "val_noisy_acc": clean}
    curve = hardware.robustness_curve(model, loader, noise, [noise.sigma], samples=samples, seed=eval_seed)
    return {"val_acc": clean, "val_noisy_acc": curve.points[0].mean}
