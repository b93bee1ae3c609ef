"""Checkpoints of deployed models: the state dict plus the resolved config that rebuilds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from sweep.config import ExperimentConfig, validate

FORMAT = 1


def save_checkpoint(
    path: str | Path, model: nn.Module, cfg: ExperimentConfig, data_shape: dict[str, int], **extra: Any
) -> Path:
    """Write atomically (temporary file, then rename) so a crash never leaves a torn checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": cfg.model_dump(mode="json"),
        "data_shape": data_shape,
        "architecture": cfg.method.architecture(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> tuple[nn.Module, ExperimentConfig]:
    """Rebuild the deployed model of a checkpoint written by `save_checkpoint` (eval mode, CPU)."""
    from sweep.experiment import build_backbone

    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a noisesweep checkpoint (format {payload.get('format')!r}, expected {FORMAT})")
    cfg: ExperimentConfig = validate(ExperimentConfig, payload["config"])
    model = cfg.method.rebuild(build_backbone(cfg, payload["data_shape"]), payload.get("architecture", {}))
    model.load_state_dict(payload["state_dict"])
    return model.eval(), cfg
