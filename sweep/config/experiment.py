"""The experiment config: data, model, method, training, noise model, evaluation (pydantic models;
unknown keys are errors). Every error is caught before any work starts."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

import hardware
import methods
import zoo
from methods import METHODS, TrainConfig
from sweep.config.errors import Strict
from zoo import DataConfig, ModelConfig

MAX_SCALE = 1e6


class FlatnessConfig(Strict):
    """Arguments of `hardware.hessian_max_eigenvalue` on the training split (unshuffled)."""

    batches: int = Field(4, ge=1)
    """Batches of `train.eval_batch_size` examples in the loss."""
    iterations: int = Field(20, ge=1)
    """Power iterations at most."""
    tol: float = Field(1e-4, gt=0)
    """Stop once lambda changes by less than this (relative)."""
    seed: int = 0
    """Seed of the power iteration's start vector."""


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
    deploy: list[dict[str, Any]] = []
    """Deployment settings (`hardware.DEPLOY_SETTINGS`: `sigma`, `pcm_time`, `attack`), each judged on
    the test split with its own axis and unit, e.g. ``[{name: sigma, noise: {name: lognormal}},
    {name: pcm_time}, {name: attack, starts: 1, steps: 10}]``. Empty: only the curve above."""
    flatness: FlatnessConfig | None = None
    """Record the trained weights' flatness (`hardware.hessian_max_eigenvalue`); None: not measured."""

    @field_validator("deploy")
    @classmethod
    def _deploy(cls, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s.to_dict() for s in hardware.deploy_settings(items)]  # one-line ValueError on bad input

    def settings(self) -> list[hardware.DeploySetting]:
        """The deployment settings, built."""
        return hardware.deploy_settings(self.deploy)

    @field_validator("scales")
    @classmethod
    def _scales(cls, scales: list[float]) -> list[float]:
        if not scales or any(s < 0 for s in scales) or sorted(set(scales)) != scales:
            raise ValueError("must be a non-empty, strictly increasing list of scales >= 0")
        if scales[-1] > MAX_SCALE:  # far past chance accuracy; 1e308 overflows float32 in the noise
            raise ValueError(f"scales must be at most {MAX_SCALE:g}")
        return scales


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
        """`noise: {preset: NAME, ...overrides}` is the preset's noise model with those fields changed."""
        if isinstance(value, dict) and "preset" in value:
            value = dict(value)
            return hardware.preset(value.pop("preset"), **value)
        return value


def allowed_names() -> dict[str, list[str]]:
    """The registered names of every plug-in family, for `sweep list` and error messages."""
    return {
        "data": zoo.DATASETS.names(),
        "model": zoo.MODELS.names(),
        "method": methods.names(),
        "noise": hardware.noise_names(),
        "noise preset": sorted(hardware.PRESETS),
    }
