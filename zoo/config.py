"""The `model:` and `data:` sections of an experiment config and the builders that turn them into a
network and data splits: what the training methods and the sweeps use from the zoo."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hardware import Plugin, PluginRegistry, one_line
from zoo.datasets import DATASETS, DataSet, DataSplits
from zoo.models import MODELS, Model, StagedModel

P = TypeVar("P", bound=Plugin)


def plugin(registry: PluginRegistry[P], name: str, options: dict[str, Any]) -> P:
    """Member `name` of `registry` with its `options`; every error is one ValueError line naming the
    bad option and the allowed ones."""
    cls = registry.get(name)
    allowed = [f for f in cls.model_fields if f != "name"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"{registry.kind} {name!r} has no option {unknown[0]!r}; allowed: {', '.join(allowed) or '(none)'}"
        )
    try:
        return cls(name=name, **options)
    except ValidationError as err:
        raise one_line(err, f"{registry.kind} {name!r}") from None


class MemberConfig(BaseModel):
    """A config section that names a member of `registry` and gives its `options` (checked against the
    member's fields before any work)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)
    registry: ClassVar[PluginRegistry]

    @field_validator("name", check_fields=False)
    @classmethod
    def _known(cls, name: str) -> str:
        cls.registry.get(name)
        return name

    @model_validator(mode="after")
    def _options(self) -> MemberConfig:
        self.member()
        return self

    def member(self) -> Any:
        """The plug-in with this section's options."""
        return plugin(self.registry, self.name, self.options)


class DataConfig(MemberConfig):
    registry: ClassVar[PluginRegistry] = DATASETS

    name: str = "digits"
    """Data set: one of the registered names (`sweep list` shows them)."""
    root: str = "data"
    """Folder holding (or receiving) the torchvision data sets."""
    download: bool = False
    """Download missing torchvision data sets into `root`."""
    augment: bool = True
    """Training augmentation where the data set has one (CIFAR: random crop + flip)."""
    val_fraction: float = Field(0.1, gt=0, lt=1)
    """Fraction held out for validation (model selection); the test split is only for final curves."""
    split_seed: int = 0
    """Seed of the train/validation(/test) assignment; fixed across runs so methods see the same split."""
    options: dict[str, Any] = {}
    """Data-set-specific options (e.g. digits: test_fraction; synthetic: shape, num_classes)."""

    def member(self) -> DataSet:
        return super().member()


class ModelConfig(MemberConfig):
    registry: ClassVar[PluginRegistry] = MODELS

    name: str = "lenet"
    """Model: one of the registered names."""
    options: dict[str, Any] = {}
    """Model-specific options (e.g. mlp: hidden, depth)."""

    def member(self) -> Model:
        return super().member()


def load_dataset(
    name: str,
    *,
    root: str = "data",
    download: bool = False,
    augment: bool = True,
    val_fraction: float = 0.1,
    seed: int = 0,
    **options: Any,
) -> DataSplits:
    """Train / validation / test splits of data set `name`; `seed` fixes which items go where."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    return plugin(DATASETS, name, options).load(root, download, augment, val_fraction, seed)


def build_data(cfg: DataConfig) -> DataSplits:
    """The splits of a config's `data:` section."""
    return cfg.member().load(cfg.root, cfg.download, cfg.augment, cfg.val_fraction, cfg.split_seed)


def data_shape(data: DataSplits) -> dict[str, int]:
    """What a model needs to know about its data (stored in checkpoints to rebuild the model)."""
    return {"in_channels": data.in_channels, "image_size": data.image_size, "num_classes": data.num_classes}


def build_model(name: str, in_channels: int, image_size: int, num_classes: int, **options: Any) -> StagedModel:
    """Model `name` with its `options` for the given input and class count."""
    return plugin(MODELS, name, options).build(in_channels, image_size, num_classes)


def build_backbone(cfg: ModelConfig, shape: dict[str, int], seed: int) -> StagedModel:
    """The network of a config's `model:` section, initialized from `seed`."""
    torch.manual_seed(seed)
    return cfg.member().build(**shape)
