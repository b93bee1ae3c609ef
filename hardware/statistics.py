"""The one home of the 95% confidence-interval statistics (evaluation curves and the sweep report)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache


@cache
def t_quantile(dof: int) -> float:
    """The 0.975 quantile of Student's t with `dof` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); the std is NaN for fewer than two values."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (Student t); NaN half-width for fewer than
    two values, (NaN, NaN) for none."""
    mean, std = mean_std(values)
    n = len(values)
    return mean, (t_quantile(n - 1) * std / math.sqrt(n) if n > 1 else math.nan)


def area_under_curve(scales: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoid area under values(scales) divided by the scale range: the average over
    [min scale, max scale] (with a single scale: its value)."""
    if len(scales) == 1:
        return float(values[0])
    area = sum(
        (s1 - s0) * (v0 + v1) / 2 for s0, s1, v0, v1 in zip(scales, scales[1:], values, values[1:], strict=False)
    )
    return area / (scales[-1] - scales[0])
