"""CorrectNet (Eldebiky et al., DATE 2023, arXiv 2211.14917): Lipschitz-regularized training, then
digital error-compensation modules after layers chosen by a reinforcement-learning agent."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import hardware
from hardware import NoiseModel, derive_seed
from methods.base import METHODS, TrainContext, Trained
from methods.correctnet import compensation
from methods.correctnet.agent import Placement, reinforce
from methods.lipschitz import Lipschitz

Batches = list[tuple[torch.Tensor, torch.Tensor]]


@METHODS.add
class CorrectNet(Lipschitz):
    """Phase 1 (the training epochs): the `lipschitz` loss, unchanged.

    Phase 2 (`after_training`): the backbone is frozen (eval mode: BatchNorm statistics fixed).
    A REINFORCE agent (`methods.correctnet.agent`) picks a subset of the candidate layers; each
    placement gets compensation modules on those layers' outputs (`methods.correctnet.compensation`: residual
    1x1 conv after a Conv2d, rank-r linear after a Linear, identity at init) trained for
    `episode_batches` batches under the training noise, and its reward is

        R = val accuracy under the training noise (eval_draws draws, common random numbers)
            - param_cost * added parameters.

    Rewards are cached per placement (same seeds, same batches: a placement's reward is a number).
    The best placement seen is then trained for `final_epochs` epochs and deployed with the model;
    the modules run digitally (no noise) and are counted in the model's parameters.

    `after_training` returns the placement, reward history, final policy and added parameter count
    as the `Trained` details, its scalars as the summary; `architecture(model)` is the placement,
    which `rebuild` re-inserts before a checkpoint's weights are loaded.
    """

    name: Literal["correctnet"] = "correctnet"
    candidates: list[str] | None = Field(None, min_length=1)
    """Layers (names as in `model.named_modules()`) after which a module may go; None: every noisy
    Conv2d / Linear layer under the training noise model."""
    rank: int = Field(16, ge=1)
    """Rank of the linear compensation U V h (capped at the feature width)."""
    param_cost: float = Field(1e-6, ge=0)
    """Reward cost per added parameter (1e-6: one accuracy point per 10,000 parameters)."""
    episodes: int = Field(16, ge=1)
    """REINFORCE episodes (sampled placements) of the agent."""
    policy_lr: float = Field(0.5, gt=0)
    """Learning rate of the policy logits (on reward-normalized advantages)."""
    episode_batches: int = Field(50, ge=1)
    """Training batches of the compensation modules when a placement is scored (the same batches for
    every placement; the loader starts over if it is shorter)."""
    eval_draws: int = Field(5, ge=1)
    """Noise draws of the validation accuracy in a reward (common random numbers)."""
    compensation_lr: float = Field(3e-3, gt=0)
    """Adam learning rate of the compensation modules."""
    final_epochs: int = Field(2, ge=0)
    """Epochs over the training split for the chosen placement's final compensation modules."""

    @property
    def trains_under_noise(self) -> bool:
        return True  # the compensation modules train under the noise (and its reward is measured under it)

    # ------------------------------------------------------------------------ the second phase

    def after_training(self, model: nn.Module, ctx: TrainContext) -> Trained:
        layers = dict(model.named_modules())
        candidates = self.candidate_layers(model, ctx.noise)
        was_training = model.training
        model.eval()
        trainable = [p for p in model.parameters() if p.requires_grad]
        for p in trainable:
            p.requires_grad_(False)
        batches = _take(ctx.train_loader, self.episode_batches, ctx.device)
        specs = {c: compensation.spec_for(layers[c], self.rank) for c in candidates}
        seed = derive_seed(ctx.seed, 0xC0)
        cache: dict[Placement, float] = {}

        def reward(placement: Placement) -> float:
            if placement not in cache:
                chosen = {c: specs[c] for c, on in zip(candidates, placement, strict=True) if on}
                torch.manual_seed(seed)  # the same initial modules for every placement
                compensation.insert(model, chosen)
                self._fit(model, [batches], ctx.noise, seed)
                acc = self._noisy_val_acc(model, ctx)
                compensation.strip(model)
                cache[placement] = acc - self.param_cost * sum(map(compensation.spec_parameters, chosen.values()))
            return cache[placement]

        before = self._noisy_val_acc(model, ctx)
        search = reinforce(candidates, reward, self.episodes, lr=self.policy_lr, seed=seed)
        chosen = {c: specs[c] for c in search.names(search.best)}
        torch.manual_seed(seed)
        compensation.insert(model, chosen)
        if ctx.train_loader.generator is not None:
            ctx.train_loader.generator.manual_seed(derive_seed(ctx.seed, 0xC1))
        self._fit(model, [ctx.train_loader] * self.final_epochs, ctx.noise, seed)
        after = self._noisy_val_acc(model, ctx)
        for p in trainable:
            p.requires_grad_(True)
        model.train(was_training)

        details = {
            "placement": list(chosen),
            "added_params": sum(p.numel() for p in compensation.compensation_parameters(model)),
            "reward_history": list(search.rewards),
            "choices": [search.names(c) for c in search.choices],
            "probabilities": dict(zip(candidates, search.probabilities, strict=True)),
            "val_noisy_acc_before": before,
            "val_noisy_acc_after": after,
        }
        return Trained(model, scalars(details), details)

    def candidate_layers(self, model: nn.Module, noise: NoiseModel) -> list[str]:
        """`candidates`, or the noisy Conv2d / Linear layers of `model` under `noise` (module order)."""
        allowed = [n for n, m in hardware.noisy_layers(model, noise) if isinstance(m, (nn.Conv2d, nn.Linear))]
        if self.candidates is None:
            return allowed
        unknown = [c for c in self.candidates if c not in allowed]
        if unknown:
            raise ValueError(
                f"method.candidates: {unknown} are not noisy conv/linear layers; allowed: {', '.join(allowed)}"
            )
        return [n for n in allowed if n in self.candidates]

    def _fit(self, model: nn.Module, epochs: list, noise: NoiseModel, seed: int) -> None:
        """Train only the compensation modules under `noise` (draws from `seed`), one pass per element
        of `epochs` (a loader or a list of batches); a no-op without modules."""
        params = compensation.compensation_parameters(model)
        if not params:
            return
        device = params[0].device
        optimizer = torch.optim.Adam(params, lr=self.compensation_lr)
        generator = hardware.draw_generator(seed, 0, device)  # the same noise for every placement
        for batches in epochs:
            for x, y in batches:
                x, y = x.to(device), y.to(device)  # (B, ...), (B,)
                with hardware.noisy_weights(model, noise, generator):
                    loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

    def _noisy_val_acc(self, model: nn.Module, ctx: TrainContext) -> float:
        sigma = ctx.noise.sigma
        curve = hardware.robustness_curve(model, ctx.val_loader, ctx.noise, [sigma], self.eval_draws, ctx.eval_seed)
        return curve.points[0].mean

    # ------------------------------------------------------------------ checkpoint round trip

    def architecture(self, model: nn.Module) -> dict:
        placement = compensation.placement_of(model)
        return {"compensation": placement} if placement else {}

    def rebuild(self, model: nn.Module, architecture: dict) -> nn.Module:
        return compensation.insert(model, architecture.get("compensation", {}))


def scalars(details: dict[str, Any]) -> dict[str, float]:
    """The tracker's scalars of `CorrectNet.after_training`'s details."""
    return {
        "correctnet/added_params": float(details["added_params"]),
        "correctnet/modules": float(len(details["placement"])),
        "correctnet/best_reward": max(details["reward_history"]),
        "correctnet/val_noisy_acc_before": details["val_noisy_acc_before"],
        "correctnet/val_noisy_acc_after": details["val_noisy_acc_after"],
    }


def _take(loader, n: int, device: torch.device) -> Batches:
    """`n` batches of `loader` on `device`, starting over at its end if it is shorter."""
    batches: Batches = []
    while len(batches) < n:
        for x, y in loader:
            batches.append((x.to(device), y.to(device)))
            if len(batches) == n:
                break
    return batches
