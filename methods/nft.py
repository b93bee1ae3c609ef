"""Negative feedback training (Qin et al., arXiv 2305.14561): outputs of the network under stronger
noise (OVF) or of noisy side exits on intermediate stages (IRS) are subtracted from the output as
negative feedback, so that the backbone learns to move away from what noise makes of it."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import hardware
from hardware import NoiseModel
from methods.base import METHODS, Method, StepOutput, TrainContext, Trained
from methods.shared import frozen_batchnorm_stats

EXITS = "nft_exits"
"""Attribute of the model holding the IRS side exits during training (removed by `after_training`)."""


def _noisy(weight: torch.Tensor, noise: NoiseModel) -> torch.Tensor:
    """w + stopgrad(w~ - w), one fresh draw (as `hardware.noisy_weights` does for the backbone)."""
    if noise.is_identity:
        return weight
    return weight + (noise.sample(weight, 1, None)[0] - weight.detach())


class IRSExit(nn.Module):
    """AdaptiveAvgPool(s x s) -> FC(hidden) -> ReLU -> FC(classes) with its own weight noise.

    The weights are plain Parameters (not nn.Linear) so the backbone's noise, digital first/last
    layer and evaluation never touch them; the exit draws its own noise in `forward`.
    Pool side s = min(max(1, floor(sqrt(features / C))), H, W) for a (C, H, W) stage output: the
    reference's 6 / 4 / 3 for 64 / 128 / 256 channels, never more cells than the map has; a flat
    (D,) output is used as it is. The first FC is sized by `build` on the first batch (the model does
    not know its input shape before), before any optimizer step, so optimizers see the final shape;
    a state dict of a built exit resizes an unbuilt one on load (resuming a run).
    """

    def __init__(self, features: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.weight1 = nn.Parameter(torch.empty(hidden, 0))  # (hidden, in_features) once built
        self.bias1 = nn.Parameter(torch.zeros(hidden))
        self.weight2 = nn.Parameter(torch.empty(num_classes, hidden))
        self.bias2 = nn.Parameter(torch.zeros(num_classes))
        self.side = 0  # s of the pooling; 0: a flat input, no pooling
        nn.init.kaiming_normal_(self.weight2, mode="fan_out", nonlinearity="relu")  # as the reference
        self.register_load_state_dict_pre_hook(_resize_on_load)

    @property
    def built(self) -> bool:
        return self.weight1.shape[1] > 0

    def build(self, shape: tuple[int, ...]) -> None:
        """Size the first FC for stage outputs of shape (C, H, W) or (D,) (without batch)."""
        if len(shape) == 3:
            c, h, w = shape
            self.side = min(max(1, math.isqrt(self.features // c)), h, w)
            in_features = c * self.side * self.side
        else:
            self.side, in_features = 0, math.prod(shape)
        weight = self.weight2.new_empty(self.weight1.shape[0], in_features)
        self.weight1.data = nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")

    def get_extra_state(self) -> dict:
        return {"side": self.side}

    def set_extra_state(self, state: dict) -> None:
        self.side = int(state["side"])

    def forward(self, h: torch.Tensor, noise: NoiseModel) -> torch.Tensor:
        if self.side:
            h = F.adaptive_avg_pool2d(h, self.side)  # (B, C, s, s)
        h = h.flatten(1)  # (B, in_features)
        h = F.relu(F.linear(h, _noisy(self.weight1, noise), self.bias1))  # (B, hidden)
        return F.linear(h, _noisy(self.weight2, noise), self.bias2)  # (B, classes)


def _resize_on_load(module: IRSExit, state_dict: dict, prefix: str, *args) -> None:
    saved = state_dict.get(prefix + "weight1")
    if saved is not None and saved.shape != module.weight1.shape:
        module.weight1.data = module.weight2.new_empty(saved.shape)


@METHODS.add
class NFT(Method):
    """nf_out = out - beta * sum_{n=1..N} 10^-(n-1) * Out_n,   L = CE(nf_out / (N + 1), y).

    out: the output under the training noise (scale sigma).
    OVF (oriented variational forward): Out_1..Out_3 = outputs with the same weights under the
    noise model at sigma + 0.15, + 0.10, + 0.05 (`ovf_offsets`).
    IRS (intermediate representation snapshot): Out_n = side exit n (`IRSExit`, shallowest first)
    on the noisy output of stage n, with its own weight noise at `exit_sigma`.
    `both` (an extension, not in the paper): the OVF outputs then the IRS ones, each family weighted
    10^-(n-1) from its own first member, N = all of them.

    Gradients reach the backbone through every output (also through the exits, as in the authors'
    code). BatchNorm: only the forward at the training scale updates the running statistics (the
    authors' code lets the OVF forwards update them too). The exits are removed by `after_training`:
    the deployed model has exactly the backbone's parameters.
    Terms logged: `nf_ce` (the loss) and `ce` (plain CE of `out`, for comparison).
    """

    name: Literal["nft"] = "nft"
    variant: Literal["ovf", "irs", "both"] = "irs"
    """Which negative feedback: `ovf`, `irs`, or `both`."""
    beta: float = Field(1e-3, ge=0)
    """Feedback strength. The authors' table: ResNet-18 IRS 1e-3 (CIFAR-10/100), 1e-2 (Tiny ImageNet),
    1e-1 (MNIST), OVF 1e-1 (CIFAR), 1e-4 (MNIST); VGG-8 IRS 1e-1 (CIFAR-10), 1e-2 (MNIST), OVF 1e-3."""
    ovf_offsets: list[float] = Field([0.15, 0.10, 0.05], min_length=1)
    """OVF: the noise scales sigma + offset of Out_1, Out_2, ... (paper: 0.15, 0.10, 0.05)."""
    exit_stages: list[str] | None = Field(None, min_length=1)
    """IRS: stages that get a side exit; None: every stage but the last."""
    exit_sigma: float | None = Field(None, ge=0)
    """IRS: noise scale of the exits' own weights; None: the training scale."""
    exit_hidden: int = Field(512, ge=1)
    """IRS: width of the exits' hidden layer (paper: 512)."""
    exit_features: int = Field(2304, ge=1)
    """IRS: target flattened size after an exit's pooling, which sets its pool side s (see `IRSExit`;
    the reference's exits: 2,048-2,304)."""

    @property
    def trains_under_noise(self) -> bool:
        return True

    @property
    def uses_ovf(self) -> bool:
        return self.variant in ("ovf", "both")

    @property
    def uses_irs(self) -> bool:
        return self.variant in ("irs", "both")

    def passes(self) -> tuple[int, int]:
        """1, + 1 per OVF forward, + 2 for the IRS exits: at the paper's size (FC 512) they cost about
        1.7 LeNet passes on 8x8 digits and 0.25 ResNet-20 passes on CIFAR (bench/method_cost.py), so
        2 bounds them on the zoo's models."""
        n = 1 + len(self.ovf_offsets) * self.uses_ovf + 2 * self.uses_irs
        return (n, n)

    def exit_names(self, model: nn.Module) -> list[str]:
        if not hasattr(model, "stage_names"):
            raise ValueError("method.variant='irs' needs a StagedModel (exits hang on named stages); use 'ovf'")
        names = list(self.exit_stages if self.exit_stages is not None else model.stage_names[:-1])
        unknown = sorted(set(names) - set(model.stage_names))
        if unknown:
            raise ValueError(f"method.exit_stages: unknown stage(s) {unknown}; allowed: {', '.join(model.stage_names)}")
        if not names:
            raise ValueError("method.variant='irs' needs a model with at least two stages (or set method.exit_stages)")
        return [n for n in model.stage_names if n in names]  # shallowest first

    def prepare(self, model: nn.Module) -> nn.Module:
        if self.uses_irs:
            exits = {
                n: IRSExit(self.exit_features, self.exit_hidden, model.num_classes) for n in self.exit_names(model)
            }
            model.add_module(EXITS, nn.ModuleDict(exits))
        return model

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: NoiseModel) -> StepOutput:
        exits: nn.ModuleDict | None = getattr(model, EXITS, None)
        if self.uses_irs and exits is None:
            raise ValueError("nft: the model has no IRS exits; call method.prepare(model) before training")
        if self.uses_irs and not all(e.built for e in exits.values()):
            shapes = model.stage_shapes(tuple(x.shape[1:]))  # one dry run, on the first batch
            for stage, exit_ in exits.items():
                exit_.build(shapes[stage])
        with hardware.noisy_weights(model, noise):
            if self.uses_irs:  # logits (B, classes), feats {stage: (B, ...)}
                logits, feats = model.forward_features(x, list(exits.keys()))
            else:
                logits = model(x)  # (B, classes)

        feedback = torch.zeros_like(logits)
        n_outs = 0
        if self.uses_ovf:
            with frozen_batchnorm_stats(model):
                for i, offset in enumerate(self.ovf_offsets):
                    with hardware.noisy_weights(model, noise.with_sigma(noise.sigma + offset)):
                        feedback = feedback + 10.0**-i * model(x)  # Out_{i+1}: (B, classes)
            n_outs += len(self.ovf_offsets)
        if self.uses_irs:
            exit_noise = noise.with_sigma(noise.sigma if self.exit_sigma is None else self.exit_sigma)
            for i, (stage, exit_) in enumerate(exits.items()):
                feedback = feedback + 10.0**-i * exit_(feats[stage], exit_noise)  # (B, classes)
            n_outs += len(exits)

        nf_out = logits - self.beta * feedback  # (B, classes)
        loss = F.cross_entropy(nf_out / (n_outs + 1), y)
        return StepOutput(loss, logits, {"nf_ce": loss.item(), "ce": F.cross_entropy(logits, y).item()})

    def after_training(self, model: nn.Module, ctx: TrainContext) -> Trained:
        if hasattr(model, EXITS):
            delattr(model, EXITS)
        return Trained(model)
