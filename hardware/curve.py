"""Robustness curves: the result types, their statistics and JSON form, and a text table.

No Monte Carlo engine here (that is `hardware.engine`): reading, writing and reporting curves
needs only this module.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from hardware.statistics import area_under_curve, control_adjusted, mean_ci95, mean_std


@dataclass
class CurvePoint:
    """The accuracies of the Monte Carlo draws at one noise scale and their statistics.

    With `antithetic`, draws 2j and 2j+1 are a pair (z and -z): the mean is over all draws, the
    CI over the pair means (the pairs are independent, the two draws of a pair are not). With a
    control variate (`adjusted` set), the mean and the CI are those of `adjusted` instead of
    `accuracies`; `std` and `min` stay those of the draws' own accuracies.
    """

    scale: float
    accuracies: list[float]
    """The accuracy of each draw (with `conditional`: its expectation over the output layer's noise)."""
    mean: float
    """The estimate of the expected accuracy: the mean of `adjusted` when set, else of `accuracies`."""
    std: float
    """Standard deviation of the single draws' accuracies."""
    ci95: float
    """Half-width of the 95% confidence interval of the mean (Student t); NaN for one random draw."""
    min: float
    antithetic: bool = False
    conditional: bool = False
    """Each draw's accuracy is averaged analytically over the output layer's noise (Rao-Blackwellized):
    the same mean, a smaller spread; `min` is then the lowest such average."""
    adjusted: list[float] | None = None
    """Per draw, the accuracy minus the control variate's share (`hardware.control`,
    `hardware.statistics.control_adjusted`): its mean is the unbiased estimate, its spread is what is
    left once the control is known; pair these for differences between models evaluated with the same
    seed (or use `paired_differences`). None without a control variate."""
    controls: list[float] | None = None
    """Per draw, the control variate c(z) - E[c] (`hardware.control`; exact mean 0). None without one."""

    @property
    def n_draws(self) -> int:
        return len(self.accuracies)

    @classmethod
    def from_accuracies(
        cls,
        scale: float,
        accuracies: list[float],
        deterministic: bool,
        antithetic: bool = False,
        controls: list[float] | None = None,
    ) -> CurvePoint:
        """The point of these draws; `controls`: each draw's control variate (known mean 0)."""
        std = mean_std(accuracies)[1]
        adjusted = None if controls is None else control_adjusted(accuracies, controls, 2 if antithetic else 1)
        values = accuracies if adjusted is None else adjusted
        mean = mean_std(values)[0]
        if len(accuracies) < 2:
            std = ci95 = 0.0 if deterministic else math.nan
        elif antithetic:
            ci95 = mean_ci95([(a + b) / 2 for a, b in zip(values[::2], values[1::2], strict=True)])[1]
        else:
            ci95 = mean_ci95(values)[1]
        ctls = None if controls is None else list(controls)
        return cls(scale, list(accuracies), mean, std, ci95, min(accuracies), antithetic, False, adjusted, ctls)


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
                **{k: _json_float(v) for k, v in asdict(p).items() if k not in _LISTS},
                "n_draws": p.n_draws,
                **{k: getattr(p, k) for k in _LISTS},
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
                p.get("adjusted"),  # curves written before control variates: None
                p.get("controls"),
            )
            for p in data["points"]
        ]
        return cls(dict(data["noise"]), int(data["seed"]), points)


_LISTS = ("accuracies", "adjusted", "controls")


def paired_differences(a: CurvePoint, b: CurvePoint) -> list[float]:
    r"""Per-draw differences a - b of two points evaluated with the same seed (common random numbers),
    adjusted by the difference of their controls when both have one:

        d^_k = (a_k - b_k) - beta_{-g(k)} (c^a_k - c^b_k)   (`hardware.statistics.control_adjusted`)

    Their mean is the unbiased estimate of the difference, their CI (`mean_ci95`, over pair means with
    antithetic draws) its 95% CI. One control for the difference follows it better than the two
    points' own `adjusted` values, whose coefficients were fitted to each model alone."""
    if a.n_draws != b.n_draws or a.antithetic != b.antithetic:
        raise ValueError(f"points must have the same draws (got {a.n_draws} and {b.n_draws} draws)")
    d = [x - y for x, y in zip(a.accuracies, b.accuracies, strict=True)]
    if a.controls is None or b.controls is None:
        return d
    c = [x - y for x, y in zip(a.controls, b.controls, strict=True)]
    return control_adjusted(d, c, 2 if a.antithetic else 1)


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
