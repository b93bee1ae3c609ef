"""The `sweep:` section of a config file: grid axes, per-method search spaces, search algorithm,
scheduler, resources, tracking, storage. Checked against the base experiment before Ray starts.

One YAML file serves `sweep train` (the top level is an ExperimentConfig; the section is checked
and ignored) and `sweep run` (the section describes the sweep around that base experiment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from sweep.config import (
    ConfigError,
    ExperimentConfig,
    Strict,
    apply_overrides,
    format_error,
    read_yaml,
    validate,
)

SELECT_METRICS = ("val_auc", "val_noisy_acc", "val_acc")
"""Validation metrics of a finished trial that a search may maximize (never test metrics)."""
EPOCH_METRICS = ("val_noisy_acc", "val_acc")
"""Validation metrics reported every epoch, usable by the ASHA scheduler."""


class SearchConfig(Strict):
    algorithm: Literal["grid", "optuna"] = "grid"
    """`grid`: every grid point, random domains sampled; `optuna`: TPE (one metric) or NSGA-II (a list)."""
    num_samples: int = Field(1, ge=1)
    """Hyperparameter samples per grid point (seeds excluded: every sample runs once per seed)."""
    metric: str | list[str] = "val_auc"
    """Validation metric to maximize (val_auc, val_noisy_acc, val_acc); a list is multi-objective."""
    seed: int = 0
    """Seed of the random domains (grid) or of the Optuna sampler."""

    @field_validator("metric")
    @classmethod
    def _metric(cls, metric: str | list[str]) -> str | list[str]:
        names = [metric] if isinstance(metric, str) else metric
        bad = [m for m in names if m not in SELECT_METRICS]
        if bad or not names or len(set(names)) != len(names):
            raise ValueError(f"must be one of, or a list of distinct, {', '.join(SELECT_METRICS)} (got {metric!r})")
        return metric if isinstance(metric, str) or len(metric) > 1 else metric[0]

    @property
    def metrics(self) -> list[str]:
        return [self.metric] if isinstance(self.metric, str) else list(self.metric)


class SchedulerConfig(Strict):
    name: Literal["none", "asha"] = "none"
    """`asha`: asynchronous successive halving stops trials that fall behind at the rungs."""
    metric: Literal["val_noisy_acc", "val_acc"] = "val_noisy_acc"
    """Per-epoch validation metric ASHA compares (maximized)."""
    grace_period: int = Field(1, ge=1)
    """Epochs every trial runs before ASHA may stop it."""
    reduction_factor: float = Field(3.0, gt=1)
    """ASHA keeps the best 1/reduction_factor of the trials at each rung."""


class ResourcesConfig(Strict):
    cpus_per_trial: float = Field(1.0, gt=0)
    """CPUs per trial; torch uses max(1, int(cpus_per_trial)) threads."""
    gpus_per_trial: float = Field(0.0, ge=0)
    """GPUs per trial (fractions share a GPU); a trial given a GPU trains on it."""
    max_concurrent: int | None = Field(None, ge=1)
    """Most trials running at once (None: as many as the resources allow)."""


class TrackingConfig(Strict):
    uri: str = "sqlite:///mlflow.db"
    """MLflow tracking URI: a SQLite file (relative to the working folder) or an `mlflow server` URL."""
    experiment: str = "noisesweep"
    """MLflow experiment holding the sweep's parent run."""


class FailureConfig(Strict):
    retries: int = Field(0, ge=0)
    """Times a failed trial is restarted from its last checkpoint before it is recorded as failed."""


class SweepSection(Strict):
    """The `sweep:` section. Keys of `grid` and `space` are dotted experiment config keys
    (`noise.sigma`, `method.name`, `seed`); keys of `space` without a dot are method names."""

    name: str | None = None
    """Sweep name: folder under `storage_path` and MLflow parent run name (default: the file's stem)."""
    grid: dict[str, list[Any]] = {}
    """Grid axes: config key -> values; every combination is a grid point (`seed`: repeats)."""
    space: dict[str, Any] = {}
    """`METHOD: {hyperparameter: domain or constant}` or `config.key: domain`. A domain is one of
    {grid: [...]}, {choice: [...]}, {uniform: [lo, hi]}, {loguniform: [lo, hi]}, {randint: [lo, hi]}."""
    search: SearchConfig = SearchConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    resources: ResourcesConfig = ResourcesConfig()
    tracking: TrackingConfig = TrackingConfig()
    storage_path: str = "runs"
    """Where Ray keeps trial checkpoints and results (a folder, or shared storage such as s3://...)."""
    report_interval: float = Field(0.0, ge=0)
    """Least seconds between two reports (and checkpoints) of a trial; 0: every epoch. Each report costs
    ~10-20 ms of the trial's time: raise this for epochs far shorter than a second (the epochs in
    between still reach MLflow, bundled; ASHA then sees a rung's epoch at the next report)."""
    failure: FailureConfig = FailureConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ValueError(f"must be letters, digits, '_', '.', '-' (got {name!r})")
        return name

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"axis {key!r} needs at least one value")
            if len({repr(v) for v in values}) != len(values):
                raise ValueError(f"axis {key!r} repeats a value: {values}")
        return grid


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: the base experiment (complete, as JSON, and validated) and the section."""

    name: str
    base: dict[str, Any]
    experiment: ExperimentConfig
    section: SweepSection

    @property
    def space(self) -> Any:  # sweep.space.SearchSpace (imported lazily: it imports this module)
        from sweep.space import SearchSpace

        return SearchSpace.from_section(self.section, self.base)

    def to_dict(self) -> dict[str, Any]:
        """The whole resolved file: what `sweep run --resume` compares and MLflow stores."""
        section = self.section.model_dump(mode="json")
        section["name"] = self.name
        return {**self.base, "sweep": section}


class ConfigFile(ExperimentConfig):
    """A config file's top level: an experiment plus the optional `sweep:` section."""

    sweep: dict[str, Any] | None = None
    """The sweep around this experiment (`sweep run`); `sweep train` checks and ignores it."""


def split_raw(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(experiment part, sweep section or None) of a config file's top-level mapping, validated."""
    validate(ConfigFile, raw)  # errors list `sweep` among the allowed top-level keys
    raw = dict(raw)
    return raw, raw.pop("sweep", None)


def build_sweep(base: dict[str, Any], section_raw: dict[str, Any], default_name: str) -> SweepConfig:
    """Validate the section, then check every grid point and domain against the base experiment."""
    from sweep.space import SearchSpace

    experiment = validate(ExperimentConfig, base)
    base = experiment.model_dump(mode="json")  # complete: a grid over noise.sigma needs noise.name
    try:
        section = SweepSection.model_validate(section_raw)
    except ValidationError as err:
        prefix = "sweep." if err.errors()[0]["loc"] else "sweep: "
        raise ConfigError(prefix + format_error(SweepSection, err)) from None
    name = section.name or re.sub(r"[^A-Za-z0-9_.-]", "-", default_name) or "sweep"
    space = SearchSpace.from_section(section, base)
    space.check()
    if section.scheduler.name == "asha" and section.scheduler.grace_period >= space.max_epochs():
        raise ConfigError(
            f"sweep.scheduler.grace_period: must be less than train.epochs ({space.max_epochs()}) "
            f"for ASHA to stop anything"
        )
    return SweepConfig(name, base, experiment, section)


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepConfig:
    """The sweep of a config file (`--set sweep.search.num_samples=4` works like any key)."""
    raw = apply_overrides(read_yaml(path), overrides or [])
    base, section = split_raw(raw)
    if section is None:
        raise ConfigError(f"{path}: no `sweep:` section; add one (see configs/digits.yaml) to run a sweep")
    return build_sweep(base, section, Path(path).stem)
