"""Consistency regularization (Hou, Zhang, Wang, Wu, MLST 5(3) 035065, 2024): the noisy network's
intermediate features are pulled towards those of the clean, noise-free network."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import hardware
from hardware import NoiseModel
from methods.base import METHODS, Method, StepOutput
from methods.shared import frozen_batchnorm_stats, kl_divergence


def _distance(kind: str, noisy: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """D(noisy, clean) of two (B, ...) tensors, averaged over the batch."""
    if kind == "mse":
        return F.mse_loss(noisy, clean)  # mean over every element
    if kind == "cosine":
        return (1 - F.cosine_similarity(noisy.flatten(1), clean.flatten(1), dim=1)).mean()
    return kl_divergence(clean, noisy)  # kl of logits (B, classes)


@METHODS.add
class Consistency(Method):
    """L = CE(f(x; w~), y) + weight * sum_{l in taps} D(h_l(x; w~), h_l(x; w)).

    w~ is a fresh draw of the training noise model (as in `noise_injection`), h_l the output of
    stage l. D is the MSE (mean over elements) by default; `cosine` uses 1 - cos per sample;
    `kl` compares the logits instead of the tapped stages: KL(softmax(clean) || softmax(noisy)).

    BatchNorm: both forwards run in train mode (batch statistics); only the NOISY forward updates
    the running statistics, so the deployed statistics are the ones seen under noise, as on the
    chip; the clean branch is an auxiliary forward with its running statistics frozen.
    The term is logged as `consistency` (the sum) and `consistency/<stage>` per tapped stage.
    """

    name: Literal["consistency"] = "consistency"
    weight: float = Field(1.0, ge=0)
    """lambda, the weight of the consistency term (the paper tunes it; 1.0 is our default)."""
    distance: Literal["mse", "cosine", "kl"] = "mse"
    """D: `mse` of features (the paper's), `cosine` distance of features, or `kl` of the logits."""
    taps: list[str] | None = Field(None, min_length=1)
    """Stages whose outputs are compared; None: the model's `default_taps`. Ignored by `kl`."""
    detach_clean: bool = True
    """Stop-gradient on the clean branch (a fixed target); False backpropagates through both."""

    @property
    def trains_under_noise(self) -> bool:
        return True

    def stage_taps(self, model: nn.Module) -> list[str]:
        """The stages this method compares on `model` (none for `kl`, which compares logits)."""
        if self.distance == "kl":
            return []
        if not hasattr(model, "forward_features"):
            raise ValueError(f"method.distance={self.distance!r} needs a StagedModel; use distance='kl'")
        return list(self.taps if self.taps is not None else model.default_taps)

    def passes(self) -> tuple[int, int]:
        return (2, 1 if self.detach_clean else 2)

    def _features(
        self, model: nn.Module, x: torch.Tensor, taps: list[str]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.distance == "kl":
            return model(x), {}
        return model.forward_features(x, taps)  # (B, classes), {stage: (B, ...)}

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: NoiseModel) -> StepOutput:
        taps = self.stage_taps(model)
        with torch.set_grad_enabled(not self.detach_clean), frozen_batchnorm_stats(model):
            clean_logits, clean = self._features(model, x, taps)
        with hardware.noisy_weights(model, noise):
            logits, noisy = self._features(model, x, taps)
        ce = F.cross_entropy(logits, y)

        if self.distance == "kl":
            per_tap = {"logits": _distance("kl", logits, clean_logits)}
        else:
            per_tap = {t: _distance(self.distance, noisy[t], clean[t]) for t in taps}
        consistency = torch.stack(list(per_tap.values())).sum()
        loss = ce + self.weight * consistency
        names = ["ce", "consistency"] + ([f"consistency/{t}" for t in per_tap] if self.distance != "kl" else [])
        values = torch.stack([ce, consistency, *per_tap.values()]).tolist()  # one device sync
        return StepOutput(loss, logits, dict(zip(names, values, strict=False)))
