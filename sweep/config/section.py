"""The `sweep:` section of a config file: grid axes, per-method search spaces, search algorithm,
scheduler, resources, tracking, storage. Checked against the base experiment before Ray starts.

One YAML file serves `sweep train` (the top level is an ExperimentConfig; the section is checked
and ignored) and `sweep run` (the section describes the sweep around that base experiment).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from sweep.config.claim import Claim
from sweep.config.errors import Strict

SELECT_METRICS = ("val_auc", "val_noisy_acc", "val_acc")
"""Validation metrics of a finished trial that a search may maximize (never test metrics); also
`val_auc:KEY` and `val_acc:KEY:VALUE` of a deployment setting (`setting_metric`)."""
SETTING_METRIC = re.compile(r"^val_(auc|acc):([A-Za-z0-9_.-]+?)(?::([0-9.e-]+))?$")


def value_label(value: float) -> str:
    """An axis value in a metric name: `0.05`, `2592000` (MLflow names cannot hold `+`)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}".replace("+", "")


def setting_metric(key: str, value: float | None = None, split: str = "test") -> str:
    """The name of a deployment setting's metric: `auc:KEY` (its AUC) or `acc:KEY:VALUE` (accuracy at
    one axis value) on test, `val_auc:KEY` / `val_acc:KEY:VALUE` on validation."""
    prefix = "val_" if split == "val" else ""
    return f"{prefix}auc:{key}" if value is None else f"{prefix}acc:{key}:{value_label(value)}"


def parse_setting_metric(metric: str) -> tuple[str, float | None] | None:
    """(setting key, axis value or None for the AUC) of a `val_auc:KEY` / `val_acc:KEY:VALUE` name."""
    match = SETTING_METRIC.match(metric)
    if match is None or (match[1] == "acc") != (match[3] is not None):
        return None
    return match[2], None if match[3] is None else float(match[3])


class SearchConfig(Strict):
    algorithm: Literal["grid", "optuna"] = "grid"
    """`grid`: every grid point, random domains sampled; `optuna`: TPE (one metric) or NSGA-II (a list)."""
    num_samples: int = Field(1, ge=1)
    """Hyperparameter samples per grid point (seeds excluded: every sample runs once per seed)."""
    metric: str | list[str] = "val_auc"
    """Validation metric to maximize (val_auc, val_noisy_acc, val_acc); a list is multi-objective."""
    seed: int = 0
    """Seed of the random domains (grid) or of the Optuna sampler."""
    budget: int | None = Field(None, ge=1)
    """Configurations per method, the same for every method (replaces num_samples): each method's budget
    is spread over its grid points; a method whose space has fewer configurations gets all of them."""

    @field_validator("metric")
    @classmethod
    def _metric(cls, metric: str | list[str]) -> str | list[str]:
        names = [metric] if isinstance(metric, str) else metric
        bad = [m for m in names if m not in SELECT_METRICS and parse_setting_metric(m) is None]
        if bad or not names or len(set(names)) != len(names):
            raise ValueError(
                f"must be one of, or a list of distinct, {', '.join(SELECT_METRICS)}, val_auc:KEY or "
                f"val_acc:KEY:VALUE of a setting in eval.deploy (got {metric!r})"
            )
        return metric if isinstance(metric, str) or len(metric) > 1 else metric[0]

    @property
    def metrics(self) -> list[str]:
        return [self.metric] if isinstance(self.metric, str) else list(self.metric)

    def setting_keys(self) -> set[str]:
        """The deployment settings the selection names (evaluated on validation by every trial)."""
        return {parsed[0] for m in self.metrics if (parsed := parse_setting_metric(m)) is not None}


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
    claim: Claim | None = None
    """What a paper claims (configs/claims/): `sweep report` prints its verdict on this sweep's results."""

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
