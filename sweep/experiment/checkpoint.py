"""Checkpoints of deployed models: the state dict plus the resolved config that rebuilds them."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sweep.config import ExperimentConfig, atomic_write, validate
from zoo import build_backbone

FORMAT = 1
MODEL_FILE = "checkpoint.pt"
"""The file name of a deployed model's checkpoint (in `sweep train --out`, trial checkpoints, MLflow)."""


def save_checkpoint(
    path: str | Path, model: nn.Module, cfg: ExperimentConfig, data_shape: dict[str, int], **extra: Any
) -> Path:
    """Write atomically (temporary file, fsync, rename) so a crash or a full disk never leaves a torn
    checkpoint or a temporary file."""
    payload = {
        "format": FORMAT,
        "config": cfg.model_dump(mode="json"),
        "data_shape": data_shape,
        "architecture": cfg.method.architecture(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def safe_load(path: str | Path) -> Any:
    """`torch.load` that never runs code from the file: tensors, numbers, strings, lists and dicts only.

    A file from elsewhere (a shared bucket, a download) may carry a pickle payload; `weights_only=True`
    refuses any global outside torch's allow-list before anything is executed.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "pickle protocol 4" and the like: the error below says it
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        code = re.search(r"GLOBAL ([\w.]+)", str(error))
        if code:
            raise ValueError(
                f"{path}: refused, the file would run code ({code.group(1)}); a checkpoint holds only tensors "
                "and plain data"
            ) from None
        raise ValueError(f"{path}: not a readable torch file (UnpicklingError)") from None
    except Exception as error:  # any parse failure of untrusted bytes (KeyError, EOFError, RuntimeError, ...)
        raise ValueError(f"{path}: not a readable torch file ({type(error).__name__})") from None


def load_checkpoint(path: str | Path) -> tuple[nn.Module, ExperimentConfig]:
    """Rebuild the deployed model of a checkpoint written by `save_checkpoint` (eval mode, CPU)."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    payload = safe_load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "state_dict" not in payload:
        found = f"format {payload.get('format')!r}" if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: not a noisesweep checkpoint ({found}, expected format {FORMAT})")
    cfg: ExperimentConfig = validate(ExperimentConfig, payload["config"])
    try:
        backbone = build_backbone(cfg.model, payload["data_shape"], cfg.seed)
        model = cfg.method.rebuild(backbone, payload.get("architecture", {}))
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: weights do not fit the model its config builds ({first[:160]})") from None
    return model.eval(), cfg
