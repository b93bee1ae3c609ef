"""The experiment config: pydantic models (unknown keys are errors), loaded from YAML, `--set` overrides.

Every error is caught here, before any work starts, and reported as one line naming the field
and the allowed values.
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import hardware
import methods
from hardware.noise.base import NoiseModel
from methods.base import METHODS, Method
from methods.datasets import DATASETS
from methods.models import MODELS
from methods.train import TrainConfig


class ConfigError(ValueError):
    """A config problem, as one line naming the field and the allowed values."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


def _check_options(kind: str, name: str, function: Any, options: dict[str, Any], skip: int) -> None:
    """Reject options the builder does not take, naming the ones it does."""
    params = list(inspect.signature(function).parameters.values())[skip:]
    allowed = [p.name for p in params if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{kind} {name!r} has no option {unknown[0]!r}; allowed: {', '.join(allowed) or '(none)'}")


class DataConfig(Strict):
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

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        DATASETS.get(name)
        return name

    @model_validator(mode="after")
    def _options(self) -> DataConfig:
        _check_options("data set", self.name, DATASETS.get(self.name), self.options, skip=5)
        return self


class ModelConfig(Strict):
    name: str = "lenet"
    """Model: one of the registered names."""
    options: dict[str, Any] = {}
    """Model-specific options passed to its builder (e.g. mlp: hidden, depth)."""

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        MODELS.get(name)
        return name

    @model_validator(mode="after")
    def _options(self) -> ModelConfig:
        _check_options("model", self.name, MODELS.get(self.name), self.options, skip=3)
        return self


class EvalConfig(Strict):
    scales: list[float] = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]
    """Evaluation noise scales (sigma of the noise model) of the robustness curve."""
    samples: int = Field(20, ge=1)
    """Monte Carlo draws per scale (the minimum, with `target_ci`)."""
    target_ci: float | None = Field(None, gt=0)
    """Keep drawing until the 95% CI half-width is at most this (accuracy as a fraction)."""
    max_samples: int | None = Field(None, ge=1)
    """Upper bound on draws per scale with `target_ci`."""
    seed: int = 1234
    """Seed of the common random numbers: draw k uses a generator seeded from (seed, k)."""

    @field_validator("scales")
    @classmethod
    def _scales(cls, scales: list[float]) -> list[float]:
        if not scales or any(s < 0 for s in scales) or sorted(set(scales)) != scales:
            raise ValueError("must be a non-empty, strictly increasing list of scales >= 0")
        return scales


def _noise_with_preset(value: Any) -> Any:
    """`noise: {preset: NAME, ...overrides}` expands a named preset from `hardware.PRESETS`."""
    if isinstance(value, dict) and "preset" in value:
        value = dict(value)
        name = value.pop("preset")
        if name not in hardware.PRESETS:
            raise ValueError(f"unknown noise preset {name!r}; allowed: {', '.join(sorted(hardware.PRESETS))}")
        value = {**hardware.PRESETS[name], **value}
    return value


class ExperimentConfig(Strict):
    """One training run: data, model, method, training, noise model, evaluation."""

    seed: int = 0
    """Seed of initialization, shuffling and training noise."""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    method: METHODS.union() = Field(default_factory=lambda: METHODS.build("baseline"))  # type: ignore[valid-type]
    train: TrainConfig = TrainConfig()
    noise: hardware.NOISE_MODELS.union() = Field(  # type: ignore[valid-type]
        default_factory=lambda: hardware.noise_model("additive", sigma=0.2)
    )
    eval: EvalConfig = EvalConfig()

    @field_validator("noise", mode="before")
    @classmethod
    def _preset(cls, value: Any) -> Any:
        return _noise_with_preset(value)


# ---------------------------------------------------------------------------------------- loading


def parse_overrides(pairs: list[str]) -> list[tuple[list[str], Any]]:
    """`a.b=value` -> (["a", "b"], value); values are YAML (numbers, booleans, lists, null)."""
    parsed = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {pair!r}: expected KEY.PATH=VALUE, e.g. --set train.epochs=5")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {pair!r}: the value is not valid YAML ({err.problem})") from None
        parsed.append((key.split("."), value))
    return parsed


def set_key(raw: dict[str, Any], path: list[str], value: Any, where: str = "--set") -> None:
    """raw[path[0]][path[1]]... = value, creating mappings on the way."""
    node = raw
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where} {'.'.join(path)}: {part!r} is not a mapping")
        node = child
    node[path[-1]] = value


def apply_overrides(raw: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    for path, value in parse_overrides(pairs):
        set_key(raw, path, value)
    return raw


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    return raw


def validate(cls: type[BaseModel], raw: dict[str, Any]) -> Any:
    """`cls.model_validate(raw)`, with the first error turned into a one-line ConfigError."""
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_error(cls, err)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """The experiment of a config file; its `sweep:` section, if any, is checked and ignored."""
    from sweep.sweep_config import build_sweep, split_raw

    base, section = split_raw(apply_overrides(read_yaml(path), overrides or []))
    cfg = validate(ExperimentConfig, base)
    if section is not None:
        build_sweep(base, section, Path(path).stem)
    return cfg


# ------------------------------------------------------------------------------ error formatting

_PLUGIN_FIELDS = {"method": METHODS, "noise": hardware.NOISE_MODELS}


def _member(annotation: Any, tag: Any) -> type[BaseModel] | None:
    """The BaseModel class inside `annotation` (a model, optional, or tagged union) matching `tag`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _member(typing.get_args(annotation)[0], tag)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                name_field = arg.model_fields.get("name")
                if tag is None or (name_field is not None and name_field.default == tag):
                    return arg
        return None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _display_path(cls: type[BaseModel], loc: tuple) -> tuple[str, type[BaseModel] | None]:
    """Dotted user-facing path of `loc` (discriminator tags dropped) and the model class it ends in."""
    parts: list[str] = []
    current: type[BaseModel] | None = cls
    items = list(loc)
    i = 0
    while i < len(items):
        part = items[i]
        parts.append(str(part))
        i += 1
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            current = None
            continue
        annotation = current.model_fields[part].annotation
        tag = None
        if part in _PLUGIN_FIELDS and i < len(items) and items[i] in _PLUGIN_FIELDS[part]:
            tag = items[i]
            i += 1  # pydantic puts the union member's tag in the location; users never wrote it
        current = _member(annotation, tag)
    return ".".join(parts), current


def format_error(cls: type[BaseModel], err: ValidationError) -> str:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    path, _ = _display_path(cls, loc)
    if first["type"] == "extra_forbidden":
        _, parent = _display_path(cls, loc[:-1])
        allowed = sorted(parent.model_fields) if parent is not None else []
        message = f"{path}: unknown key; allowed: {', '.join(allowed)}"
    else:
        msg = first["msg"].removeprefix("Value error, ")
        message = f"{path}: {msg}" if path else msg
        if first["type"] not in ("missing", "union_tag_invalid", "value_error") and "input" in first:
            message += f" (got {first['input']!r})"
    more = len(err.errors()) - 1
    return message + (f" (and {more} more error{'s' * (more > 1)})" if more else "")


def allowed_names() -> dict[str, list[str]]:
    """The registered names of every plug-in family, for `sweep list` and error messages."""
    return {
        "data": DATASETS.names(),
        "model": MODELS.names(),
        "method": methods.names(),
        "noise": hardware.noise_names(),
        "noise preset": sorted(hardware.PRESETS),
    }


__all__ = [
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ExperimentConfig",
    "Method",
    "ModelConfig",
    "NoiseModel",
    "TrainConfig",
    "load_config",
]
