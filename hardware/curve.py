"""Robustness curves: the result types, their statistics and JSON form, and a text table.

No Monte Carlo engine here (that is `hardware.engine`): reading, writing and reporting curves
needs only this module.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from hardware.statistics import area_under_curve, mean_ci95, mean_std


@dataclass
class CurvePoint:
    """The accuracies of the Monte Carlo draws at one noise scale and their statistics.

    With `antithetic`, draws 2j and 2j+1 are a pair (z and -z): the mean is over all draws, the
    CI over the pair means (the pairs are independent, the two draws of a pair are not).
    """

    scale: float
    accuracies: list[float]
    mean: float
    std: float
    """Standard deviation of the single draws' accuracies."""
    ci95: float
    """Half-width of the 95% confidence interval of the mean (Student t); NaN for one random draw."""
    min: float
    antithetic: bool = False
    conditional: bool = False
    """Each draw's accuracy is averaged analytically over the output layer's noise (Rao-Blackwellized):
    the same mean, a smaller spread; `min` is then the lowest such average."""

    @property
    def n_draws(self) -> int:
        return len(self.accuracies)

    @classmethod
    def from_accuracies(
        cls, scale: float, accuracies: list[float], deterministic: bool, antithetic: bool = False
    ) -> CurvePoint:
        mean, std = mean_std(accuracies)
        if len(accuracies) < 2:
            std = ci95 = 0.0 if deterministic else math.nan
        elif antithetic:
            pairs = [(a + b) / 2 for a, b in zip(accuracies[::2], accuracies[1::2], strict=True)]
            ci95 = mean_ci95(pairs)[1]
        else:
            ci95 = mean_ci95(accuracies)[1]
        return cls(scale, list(accuracies), mean, std, ci95, min(accuracies), antithetic)


@dataclass
class RobustnessCurve:
    """Accuracy vs noise scale.

    `noise`: the noise model's fields except sigma (the scale axis). `auc`: the trapezoid area under
    the mean accuracy over the scales divided by the scale range, i.e. the average accuracy over
    [min scale, max scale] (with a single scale: its mean).
    """

    noise: dict[str, Any]
    seed: int
    points: list[CurvePoint]
    auc: float = field(init=False)

    def __post_init__(self) -> None:
        self.auc = area_under_curve(self.scales, self.means)

    @property
    def scales(self) -> list[float]:
        return [p.scale for p in self.points]

    @property
    def means(self) -> list[float]:
        return [p.mean for p in self.points]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (NaN becomes None)."""
        points = [
            {
                **{k: _json_float(v) for k, v in asdict(p).items() if k != "accuracies"},
                "n_draws": p.n_draws,
                "accuracies": p.accuracies,
            }
            for p in self.points
        ]
        return {"noise": self.noise, "seed": self.seed, "scales": self.scales, "auc": self.auc, "points": points}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustnessCurve:
        points = [
            CurvePoint(
                p["scale"],
                list(p["accuracies"]),
                p["mean"],
                _nan(p["std"]),
                _nan(p["ci95"]),
                p["min"],
                bool(p.get("antithetic", False)),  # curves written before antithetic draws
                bool(p.get("conditional", False)),
            )
            for p in data["points"]
        ]
        return cls(dict(data["noise"]), int(data["seed"]), points)


def _json_float(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def format_curve_table(curve: RobustnessCurve) -> str:
    """The curve as a plain-text table (accuracies in %), with the AUC below it."""
    noise = curve.noise.get("name", "?")
    lines = [f"{'scale':>8}  {'draws':>5}  {'mean %':>7}  {'std':>6}  {'CI95 +-':>7}  {'min %':>7}"]
    for p in curve.points:
        lines.append(
            f"{p.scale:>8.4g}  {p.n_draws:>5d}  {100 * p.mean:>7.2f}  {100 * p.std:>6.2f}  "
            f"{100 * p.ci95:>7.2f}  {100 * p.min:>7.2f}"
        )
    lines.append(f"noise {noise}, seed {curve.seed}: AUC (mean accuracy over the scales) {100 * curve.auc:.2f}%")
    return "\n".join(lines)
