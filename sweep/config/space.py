"""The search space of a sweep: grid points, per-method domains, and the flat trial configs.

A trial config is a flat dict: dotted experiment keys (`method.name`, `noise.sigma`, `seed`),
`METHOD.knob` (`consistency.weight`, or `noise_injection.noise.sigma` for an experiment key in a
method's space, varied for that method only) and `trial_key` ("0007-seed2"), the stable name by
which MLflow finds a trial's run again. Each grid point draws `num_samples` values of its random
domains (grid: seeded draws; optuna: the method's own study, sweep/execution/studies.py), each draw
runs once per seed; a point without random domains runs once; `search.budget: B` gives every method
B configurations.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from methods import METHODS
from sweep.config.domain import Domain
from sweep.config.errors import ConfigError, validate
from sweep.config.experiment import ExperimentConfig
from sweep.config.files import set_key
from sweep.config.section import SweepSection

TRIAL_KEY = "trial_key"
GROUP = "_group"
"""Index of the hyperparameter draw a trial belongs to (its seeds share it); replaced by `trial_key`."""
RESERVED = (TRIAL_KEY, GROUP)


@dataclass
class SearchSpace:
    """Grid axes and domains of a sweep around the base experiment `base` (complete, as JSON)."""

    base: dict[str, Any]
    base_method: str
    axes: dict[str, list[Any]]
    seeds: list[int] | None
    method_domains: dict[str, dict[str, Domain]] = field(default_factory=dict)
    method_constants: dict[str, dict[str, Any]] = field(default_factory=dict)
    global_domains: dict[str, Domain] = field(default_factory=dict)
    algorithm: str = "grid"
    num_samples: int = 1
    seed: int = 0
    budget: int | None = None

    # ------------------------------------------------------------------------------ building

    @classmethod
    def from_section(cls, section: SweepSection, base: dict[str, Any]) -> SearchSpace:
        """Parse `grid` and `space`; errors name the key (`sweep.space.consistency.wieght: ...`)."""
        validated = validate(ExperimentConfig, base)
        base = validated.model_dump(mode="json")  # complete: a grid over noise.sigma needs noise.name
        base_method = validated.method.name
        axes = {k: list(v) for k, v in section.grid.items() if k != "seed"}
        space = cls(
            base,
            base_method,
            axes,
            section.grid.get("seed"),
            algorithm=section.search.algorithm,
            num_samples=section.search.num_samples,
            seed=section.search.seed,
            budget=section.search.budget,
        )
        for key in section.grid:
            space._check_key(f"sweep.grid.{key}", key)
        unknown = [m for m in axes.get("method.name", []) if m not in METHODS]
        if unknown:
            raise ConfigError(
                f"sweep.grid.method.name: unknown method {unknown[0]!r}; allowed: {', '.join(METHODS.names())}"
            )
        for key, raw in section.space.items():
            where = f"sweep.space.{key}"
            if "." in key:
                space._check_key(where, key)
                if key in section.grid:
                    raise ConfigError(f"{where}: {key} is already a grid axis; give it either grid values or a domain")
                domain = Domain.parse(where, raw)
                if domain is None:
                    raise ConfigError(
                        f"{where}: expected a domain such as {{choice: [...]}}; fixed values go in the base config"
                    )
                space.global_domains[key] = domain
            else:
                space._add_method(where, key, raw)
        return space

    def _check_key(self, where: str, key: str) -> None:
        if key == "eval.seed":
            raise ConfigError(f"{where}: eval.seed is shared by all trials (common random numbers); it cannot vary")
        if key.startswith("method.") and key != "method.name" and "method.name" in self.axes:
            raise ConfigError(
                f"{where}: with method.name as a grid axis, put a method's hyperparameters under "
                f"sweep.space.<method>.<hyperparameter>"
            )

    def _add_method(self, where: str, method: str, raw: Any) -> None:
        if method == "seed":
            raise ConfigError(f"{where}: seeds are a grid axis: sweep.grid.seed: [0, 1, 2]")
        if method not in METHODS:
            raise ConfigError(f"{where}: unknown method {method!r}; allowed: {', '.join(METHODS.names())}")
        if method not in self.methods():
            raise ConfigError(
                f"{where}: method {method!r} is not in this sweep (methods: {', '.join(self.methods())}); "
                f"add it to sweep.grid.method.name"
            )
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping of {method}'s hyperparameters to domains or values")
        allowed = [f for f in METHODS.get(method).model_fields if f != "name"]
        for param, value in raw.items():
            if "." in param:
                head = param.split(".")[0]
                if head not in ExperimentConfig.model_fields or head in ("method", "seed", "eval"):
                    raise ConfigError(
                        f"{where}.{param}: a method's space takes its hyperparameters or experiment keys "
                        f"(noise.sigma, train.lr, ...), not {param!r}"
                    )
            elif param not in allowed:
                raise ConfigError(
                    f"{where}.{param}: method {method!r} has no hyperparameter {param!r}; "
                    f"allowed: {', '.join(allowed) or '(none)'}"
                )
            domain = Domain.parse(f"{where}.{param}", value)
            if domain is None:
                self.method_constants.setdefault(method, {})[param] = value
            else:
                self.method_domains.setdefault(method, {})[param] = domain

    # ------------------------------------------------------------------------------ the points

    def methods(self) -> list[str]:
        return list(self.axes.get("method.name", [self.base_method]))

    def domains(self, method: str) -> dict[str, Domain]:
        """The domains of a trial of `method`: global ones and the method's own (`METHOD.param`)."""
        own = {f"{method}.{p}": d for p, d in self.method_domains.get(method, {}).items()}
        return {**self.global_domains, **own}

    def random_domains(self, point: dict[str, Any]) -> dict[str, Domain]:
        method = point.get("method.name", self.base_method)
        return {k: d for k, d in self.domains(method).items() if d.random}

    def points(self) -> list[dict[str, Any]]:
        """Grid points: the product of the axes (seed aside) times the grid domains of each point's method."""
        points = []
        for combo in itertools.product(*self.axes.values()):
            point = dict(zip(self.axes, combo, strict=True))
            method = point.get("method.name", self.base_method)
            point.update({f"{method}.{p}": v for p, v in self.method_constants.get(method, {}).items()})
            grids = {k: d.values for k, d in self.domains(method).items() if not d.random}
            for values in itertools.product(*grids.values()):
                points.append({**point, **dict(zip(grids, values, strict=True))})
        return points

    def draws(self) -> list[tuple[dict[str, Any], int]]:
        """Each grid point and the number of configurations drawn at it: `num_samples` with a random
        domain, 1 without; with a budget, the method's budget spread over its points."""
        points = self.points()
        of_method: dict[str, list[int]] = {}
        for i, point in enumerate(points):
            of_method.setdefault(point.get("method.name", self.base_method), []).append(i)
        counts = [0] * len(points)
        for indices in of_method.values():
            random = bool(self.random_domains(points[indices[0]]))
            for rank, i in enumerate(indices):
                if not random:
                    counts[i] = 1
                elif self.budget is None:
                    counts[i] = self.num_samples
                else:
                    counts[i] = self.budget // len(indices) + (rank < self.budget % len(indices))
        return list(zip(points, counts, strict=True))

    def budgets(self) -> dict[str, int]:
        """Configurations (hyperparameter draws) per method."""
        out: dict[str, int] = {}
        for point, count in self.draws():
            method = point.get("method.name", self.base_method)
            out[method] = out.get(method, 0) + count
        return out

    @property
    def num_groups(self) -> int:
        """Hyperparameter draws: the sum over the points of their draws."""
        return sum(count for _, count in self.draws())

    @property
    def num_trials(self) -> int:
        return self.num_groups * len(self.seeds or [None])

    def grid_configs(self) -> list[dict[str, Any]]:
        """Configs of the grid search: each point with `num_samples` seeded draws of its random domains."""
        configs = []
        for point, count in self.draws():
            for _ in range(count):
                rng = np.random.default_rng([self.seed, len(configs)])
                drawn = {k: d.sample(rng) for k, d in self.random_domains(point).items()}
                configs.append({**point, **drawn, GROUP: len(configs)})
        return configs

    @staticmethod
    def trial_key(group: int, seed: int | None) -> str:
        return f"{group:04d}" if seed is None else f"{group:04d}-seed{seed}"

    # ------------------------------------------------------------------------------ trial -> experiment

    def experiment_raw(self, config: dict[str, Any]) -> dict[str, Any]:
        """The base experiment with a trial config's overrides; a new method starts from its defaults."""
        raw = copy.deepcopy(self.base)
        params = overrides(config)
        method = params.get("method.name", self.base_method)
        if method != self.base_method:
            raw["method"] = {"name": method}
        for key, value in params.items():
            head, _, param = key.partition(".")
            if head in METHODS and head not in ExperimentConfig.model_fields:
                if head == method and "." in param:  # an experiment key of this method's trials
                    set_key(raw, param.split("."), value, where="sweep")
                elif head == method:
                    raw.setdefault("method", {"name": method})[param] = value
            else:
                set_key(raw, key.split("."), value, where="sweep")
        return raw

    def experiment(self, config: dict[str, Any]) -> ExperimentConfig:
        return validate(ExperimentConfig, self.experiment_raw(config))

    # ------------------------------------------------------------------------------ checks

    def check(self) -> None:
        """Validate every grid point and every domain's extreme values against the experiment config."""
        points = self.points()
        first_of: dict[str, dict[str, Any]] = {}
        for point in points:
            self._validate("sweep.grid", point)
            first_of.setdefault(point.get("method.name", self.base_method), point)
        for seed in self.seeds or []:
            self._validate("sweep.grid", {**points[0], "seed": seed})
        for point in first_of.values():
            for key, domain in self.random_domains(point).items():
                if self.algorithm == "optuna" and domain.kind == "choice":
                    bad = [v for v in domain.values if not isinstance(v, (str, int, float, bool, type(None)))]
                    if bad:
                        raise ConfigError(f"sweep.space.{key}: optuna choices must be numbers, strings or null")
                for value in domain.extremes():
                    self._validate(f"sweep.space.{key}", {**point, key: value})
        for method, point in first_of.items():
            self._check_method(method, point, sum(p.get("method.name", self.base_method) == method for p in points))

    def _check_method(self, method: str, point: dict[str, Any], num_points: int) -> None:
        """Training-noise keys only for methods that train under noise; a budget that covers the grid."""
        keys = [k.removeprefix(f"{method}.") for k in self.domains(method)]
        keys += list(self.method_constants.get(method, {}))
        if any(k.startswith("noise.") for k in keys) and not self.experiment(point).method.trains_under_noise:
            raise ConfigError(
                f"sweep.space.{method}: {method} does not train under noise, so a training noise key "
                f"would only repeat its trials; search noise.* for methods that do"
            )
        if self.budget is not None and num_points > self.budget:
            raise ConfigError(
                f"sweep.search.budget: {method} has {num_points} grid points, more than the budget of "
                f"{self.budget} configurations per method; raise the budget or make a domain random"
            )

    def notes(self) -> list[str]:
        """One line per thing the user may not expect: points that run once whatever num_samples says,
        budgets a method cannot fill."""
        lines = []
        budgets = self.budgets()
        fixed = [m for m, n in budgets.items() if not self.random_domains(self._first_point(m))]
        if fixed and (self.num_samples > 1 or self.budget):
            asked = f"budget {self.budget}" if self.budget else f"num_samples {self.num_samples}"
            lines.append(
                f"{', '.join(fixed)}: no random domain, so each grid point runs once per seed ({asked} "
                f"would repeat identical trials); configurations per method: "
                + ", ".join(f"{m} {n}" for m, n in budgets.items())
            )
        return lines

    def _first_point(self, method: str) -> dict[str, Any]:
        return next(p for p in self.points() if p.get("method.name", self.base_method) == method)

    def _validate(self, where: str, config: dict[str, Any]) -> None:
        try:
            self.experiment(config)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None

    def max_epochs(self) -> int:
        return max(self.experiment(p).train.epochs for p in self.points())


def knob_text(params: dict[str, Any]) -> str:
    """`consistency.weight=1.25, consistency.distance=mse`: the one name of each knob (as in the trial
    config, MLflow and the report), numbers to 3 significant digits."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def overrides(config: dict[str, Any]) -> dict[str, Any]:
    """A trial config without the reserved keys: what the trial changes in the base experiment."""
    return {k: v for k, v in config.items() if k not in RESERVED and not k.startswith("__")}
