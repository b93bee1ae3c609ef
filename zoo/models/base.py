"""Models as named stages, so methods can tap intermediate features and attach side exits."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable

import torch
from torch import nn

from hardware import Plugin, PluginRegistry


class StagedModel(nn.Module):
    """``logits = head(stages[-1](... stages[0](stem(x))))``.

    `stages` is an ordered ModuleDict; the output of each stage can be tapped by name
    (consistency regularization compares them, negative feedback training hangs exits on them).
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: dict[str, nn.Module],
        head: nn.Module,
        num_classes: int,
        default_taps: Iterable[str] | None = None,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleDict(stages)
        self.head = head
        self.num_classes = num_classes
        self.default_taps = tuple(default_taps if default_taps is not None else self.stages.keys())
        unknown = set(self.default_taps) - set(self.stages.keys())
        if unknown:
            raise ValueError(f"default_taps {sorted(unknown)} are not stages of {list(self.stages)}")

    @property
    def stage_names(self) -> list[str]:
        return list(self.stages.keys())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x, ())[0]

    def forward_features(self, x: torch.Tensor, taps: Iterable[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and the outputs of the stages named in `taps` (in stage order)."""
        wanted = set(taps)
        unknown = wanted - set(self.stages.keys())
        if unknown:
            raise ValueError(f"unknown stage(s) {sorted(unknown)}; allowed: {', '.join(self.stages)}")
        features: dict[str, torch.Tensor] = {}
        h = self.stem(x)
        for name, stage in self.stages.items():
            h = stage(h)
            if name in wanted:
                features[name] = h
        return self.head(h), features

    @torch.no_grad()
    def stage_shapes(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Per-stage output shape (without batch) for an input of shape (C, H, W) or (D,)."""
        was_training = self.training
        self.eval()
        try:
            x = torch.zeros(1, *input_shape, device=next(self.parameters()).device)
            _, feats = self.forward_features(x, self.stage_names)
        finally:
            self.train(was_training)
        return {name: tuple(f.shape[1:]) for name, f in feats.items()}


class Model(Plugin):
    """A member of the model zoo: its pydantic fields are its options (`model.options` in a config)."""

    @abstractmethod
    def build(self, in_channels: int, image_size: int, num_classes: int) -> StagedModel:
        """The network for inputs (in_channels, image_size, image_size) and `num_classes` classes."""


MODELS: PluginRegistry[Model] = PluginRegistry("model")
