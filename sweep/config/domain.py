"""The domain of one searched hyperparameter, as written in a sweep's `space:`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweep.config.errors import ConfigError

DOMAIN_KINDS = ("grid", "choice", "uniform", "loguniform", "randint")


@dataclass(frozen=True)
class Domain:
    """The values of one hyperparameter: `grid` (every value), `choice`, `uniform`, `loguniform`, `randint`
    (both bounds included)."""

    kind: str
    values: tuple[Any, ...]

    @classmethod
    def parse(cls, where: str, raw: Any) -> Domain | None:
        """The domain written as `{kind: args}`; None for a constant (anything but a mapping)."""
        if not isinstance(raw, dict):
            return None
        if len(raw) != 1 or next(iter(raw)) not in DOMAIN_KINDS:
            raise ConfigError(
                f"{where}: a domain is a mapping with one key of {', '.join(DOMAIN_KINDS)}, "
                f"e.g. {{loguniform: [0.01, 1]}} (got {raw!r})"
            )
        kind, args = next(iter(raw.items()))
        if kind in ("grid", "choice"):
            if not isinstance(args, list) or not args:
                raise ConfigError(f"{where}: {kind} needs a non-empty list of values (got {args!r})")
            return cls(kind, tuple(args))
        numbers = isinstance(args, list) and len(args) == 2
        numbers = numbers and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
        if not numbers or not args[0] < args[1]:
            raise ConfigError(f"{where}: {kind} needs [low, high] with low < high (got {args!r})")
        if kind == "loguniform" and args[0] <= 0:
            raise ConfigError(f"{where}: loguniform needs low > 0 (got {args!r})")
        if kind == "randint" and not all(isinstance(a, int) for a in args):
            raise ConfigError(f"{where}: randint needs integer bounds (got {args!r})")
        return cls(kind, tuple(args))

    @property
    def random(self) -> bool:
        return self.kind != "grid"

    def extremes(self) -> list[Any]:
        """The values to validate: every listed value, or both bounds."""
        return list(self.values)

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return self.values[int(rng.integers(len(self.values)))]
        low, high = self.values
        if self.kind == "uniform":
            return float(rng.uniform(low, high))
        if self.kind == "loguniform":
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        if self.kind == "randint":
            return int(rng.integers(low, high + 1))
        raise ValueError(f"a {self.kind} domain is not sampled")

    def suggest(self, trial: Any, name: str) -> Any:
        """Ask an Optuna trial for the value of `name`."""
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.values))
        low, high = self.values
        if self.kind == "randint":
            return trial.suggest_int(name, low, high)
        return trial.suggest_float(name, float(low), float(high), log=self.kind == "loguniform")
