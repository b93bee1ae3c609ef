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


def control_adjusted(values: Sequence[float], controls: Sequence[float], group: int = 1) -> list[float]:
    r"""Per-draw values adjusted by a control variate with known mean 0 (the estimate is their mean).

    Draws come in independent groups of `group` consecutive draws (2: antithetic pairs). With a_k the
    value and c_k the control of draw k (E[c_k] = 0 exactly), g(k) the group of draw k:

        a^_k = a_k - beta_{-g(k)} c_k,   beta_{-g} = Cov(a, c) / Var(c) over the group means
                                                    outside group g (leave one group out)

    beta_{-g} does not depend on group g's draws, so E[beta_{-g} c_k] = E[beta_{-g}] E[c_k] = 0: the
    mean of the a^_k is exactly unbiased (a coefficient fitted on all draws would give the usual
    O(1/n) bias). Var(a^) -> (1 - rho^2) Var(a), rho = Corr(a, c). With fewer than three groups, or a
    constant control, beta = 0 (the values unchanged)."""
    n = len(values) // group
    if len(values) != len(controls) or len(values) % group:
        raise ValueError("values and controls must have the same length, a multiple of group")
    a = [sum(values[i * group : (i + 1) * group]) / group for i in range(n)]
    c = [sum(controls[i * group : (i + 1) * group]) / group for i in range(n)]
    sa, sc, sac, scc = sum(a), sum(c), sum(x * y for x, y in zip(a, c, strict=True)), sum(y * y for y in c)
    betas = []
    for ai, ci in zip(a, c, strict=True):
        m = n - 1  # the other groups
        if m < 2:
            betas.append(0.0)
            continue
        ma, mc = (sa - ai) / m, (sc - ci) / m
        var = scc - ci * ci - m * mc * mc
        betas.append((sac - ai * ci - m * ma * mc) / var if var > 1e-12 * max(scc, 1e-300) else 0.0)
    return [v - betas[k // group] * ck for k, (v, ck) in enumerate(zip(values, controls, strict=True))]
