"""Loading a config file: the experiment (`sweep train`) and the sweep around it (`sweep run`).

One YAML file serves both: the top level is an ExperimentConfig; its `sweep:` section describes the
sweep, and is checked (against the experiment) and ignored by `sweep train`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sweep.config.claim import check_claim
from sweep.config.errors import ConfigError, format_error, validate
from sweep.config.experiment import ExperimentConfig
from sweep.config.files import apply_overrides, read_yaml
from sweep.config.section import SweepSection, parse_setting_metric, value_label
from sweep.config.space import SearchSpace


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: the base experiment (complete, as JSON, and validated) and the section."""

    name: str
    base: dict[str, Any]
    experiment: ExperimentConfig
    section: SweepSection

    @property
    def space(self) -> SearchSpace:
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


def sweep_name(stem: str) -> str:
    """A storage-safe sweep name from a file name; a name that had to change gets a short hash of the
    original, so `Versuch-ä.yaml` and `Versuch-ö.yaml` stay two sweeps."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", stem).strip("-.") or "sweep"
    if safe == stem:
        return safe
    return f"{safe}-{hashlib.sha1(stem.encode()).hexdigest()[:6]}"


def build_sweep(base: dict[str, Any], section_raw: dict[str, Any], default_name: str) -> SweepConfig:
    """Validate the section, then check every grid point and domain against the base experiment."""
    experiment = validate(ExperimentConfig, base)
    base = experiment.model_dump(mode="json")  # complete: a grid over noise.sigma needs noise.name
    try:
        section = SweepSection.model_validate(section_raw)
    except ValidationError as err:
        prefix = "sweep." if err.errors()[0]["loc"] else "sweep: "
        raise ConfigError(prefix + format_error(SweepSection, err)) from None
    check_selection(section, experiment)
    name = section.name or sweep_name(default_name)
    space = SearchSpace.from_section(section, base)
    space.check()
    if section.claim is not None:
        check_claim(section.claim, space.methods(), experiment.eval.scales)
    if section.search.budget is not None and section.search.num_samples != 1:
        raise ConfigError("sweep.search.num_samples: set either num_samples or budget (configurations per method)")
    if searches_training_noise(space):
        selecting = [*section.search.metrics, *([section.scheduler.metric] if section.scheduler.name == "asha" else [])]
        if "val_noisy_acc" in selecting:
            raise ConfigError(
                "sweep.search.metric: val_noisy_acc is measured at each trial's own noise.sigma, which this sweep "
                "searches; select on val_auc (or val_acc, and scheduler.metric: val_acc)"
            )
    if section.scheduler.name == "asha" and section.scheduler.grace_period >= space.max_epochs():
        raise ConfigError(
            f"sweep.scheduler.grace_period: must be less than train.epochs ({space.max_epochs()}) "
            f"for ASHA to stop anything"
        )
    return SweepConfig(name, base, experiment, section)


def check_selection(section: SweepSection, experiment: ExperimentConfig) -> None:
    """A selection metric that names a deployment setting names one of `eval.deploy` (and one of its
    axis values)."""
    settings = {s.key: s for s in experiment.eval.settings()}
    for metric in section.search.metrics:
        parsed = parse_setting_metric(metric)
        if parsed is None:
            continue
        key, value = parsed
        if key not in settings:
            allowed = ", ".join(settings) or "none: eval.deploy is empty"
            raise ConfigError(f"sweep.search.metric: {metric!r} names no setting of eval.deploy; settings: {allowed}")
        if value is not None and value not in settings[key].values:
            values = ", ".join(value_label(v) for v in settings[key].values)
            raise ConfigError(
                f"sweep.search.metric: {metric!r}: {value_label(value)} is not on {key}'s axis; values: {values}"
            )


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepConfig:
    """The sweep of a config file (`--set sweep.search.num_samples=4` works like any key)."""
    raw = apply_overrides(read_yaml(path), overrides or [])
    base, section = split_raw(raw)
    if section is None:
        raise ConfigError(f"{path}: no `sweep:` section; add one (see configs/digits.yaml) to run a sweep")
    return build_sweep(base, section, Path(path).stem)


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """The experiment of a config file; its `sweep:` section, if any, is checked and ignored."""
    base, section = split_raw(apply_overrides(read_yaml(path), overrides or []))
    cfg = validate(ExperimentConfig, base)
    if section is not None:
        build_sweep(base, section, Path(path).stem)
    return cfg


def searches_training_noise(space: SearchSpace) -> bool:
    """Whether trials differ in their training noise (so val_noisy_acc is measured at different scales)."""
    keys = [*space.axes, *space.global_domains]
    keys += [k for m in space.methods() for k in (*space.method_domains.get(m, {}), *space.method_constants.get(m, {}))]
    return any(k.startswith("noise.") for k in keys)
