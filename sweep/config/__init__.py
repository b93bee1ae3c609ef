"""The configs: one experiment (`ExperimentConfig`) and the sweep around it (`SweepConfig`), read from
YAML with `--set` overrides, every error one line before any work. Floor 1 of `sweep`: imports
hardware, zoo and methods, nothing else of `sweep`."""

from sweep.config.claim import Claim, Comparison
from sweep.config.errors import ConfigError, Strict, format_error, validate
from sweep.config.experiment import EvalConfig, ExperimentConfig, allowed_names
from sweep.config.files import apply_overrides, parse_overrides, read_yaml, set_key
from sweep.config.load import SweepConfig, build_sweep, load_config, load_sweep, split_raw
from sweep.config.output import DiskFull, atomic_write, disk_full, output_file, output_folder
from sweep.config.section import (
    SELECT_METRICS,
    ResourcesConfig,
    SweepSection,
    parse_setting_metric,
    setting_metric,
    value_label,
)
from sweep.config.space import GROUP, TRIAL_KEY, SearchSpace, knob_text, overrides

__all__ = [
    "Claim",
    "Comparison",
    "GROUP",
    "SELECT_METRICS",
    "TRIAL_KEY",
    "ConfigError",
    "DiskFull",
    "EvalConfig",
    "ExperimentConfig",
    "ResourcesConfig",
    "SearchSpace",
    "Strict",
    "SweepConfig",
    "SweepSection",
    "allowed_names",
    "apply_overrides",
    "atomic_write",
    "build_sweep",
    "disk_full",
    "format_error",
    "knob_text",
    "load_config",
    "load_sweep",
    "output_file",
    "output_folder",
    "overrides",
    "parse_setting_metric",
    "parse_overrides",
    "read_yaml",
    "set_key",
    "setting_metric",
    "split_raw",
    "validate",
    "value_label",
]
