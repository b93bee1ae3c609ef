"""The `train:` section of an experiment config: optimizer, schedule, epochs, batch size, device."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

EVAL_BATCH_SIZE = 256
"""Least batch size of evaluation passes (validation, test curves): no gradients, so larger batches."""


class TrainConfig(BaseModel):
    """How to train: optimizer, schedule, epochs, batch size, device."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)

    epochs: int = Field(30, ge=1)
    """Number of passes over the training split."""
    batch_size: int = Field(64, ge=1)
    """Training (and evaluation) batch size."""
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    """Optimizer: SGD with momentum, Adam or AdamW."""
    lr: float = Field(2e-3, gt=0)
    """Initial learning rate."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """SGD momentum (ignored by Adam/AdamW)."""
    nesterov: bool = False
    """Nesterov momentum for SGD."""
    weight_decay: float = Field(0.0, ge=0)
    """L2 weight decay (decoupled for AdamW)."""
    schedule: Literal["cosine", "step", "none"] = "cosine"
    """Per-epoch learning-rate schedule."""
    step_size: int = Field(30, ge=1)
    """Epochs between decays of the `step` schedule."""
    gamma: float = Field(0.1, gt=0, le=1)
    """Decay factor of the `step` schedule."""
    grad_clip: float | None = Field(None, gt=0)
    """Clip the global gradient norm to this value (None: no clipping)."""
    val_noise_samples: int = Field(3, ge=1)
    """Monte Carlo draws for the per-epoch noisy validation accuracy at the training noise scale."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train: `auto` picks CUDA when available."""
    num_workers: int = Field(0, ge=0)
    """DataLoader worker processes (0: load in the training process)."""
    memory_format: Literal["auto", "contiguous", "channels_last"] = "auto"
    """Layout of conv weights and images while training: `auto` is channels_last for conv nets on CPU
    (oneDNN's NHWC kernels: a LeNet step 1.25x, ResNet-20 1.09x faster); the result is contiguous."""

    @property
    def eval_batch_size(self) -> int:
        """Batch size of evaluation passes: the training batch size, at least EVAL_BATCH_SIZE."""
        return max(self.batch_size, EVAL_BATCH_SIZE)


def resolve_device(name: str) -> torch.device:
    """`auto`: CUDA when available, else CPU; `cuda` without a CUDA device is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device='cuda' but no CUDA device is available; allowed here: auto, cpu")
    return torch.device(name)
