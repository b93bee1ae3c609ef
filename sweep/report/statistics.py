"""Decisions from paired differences over seeds: pure functions, no MLflow, no I/O.

For a method and the reference, trained with the same seeds and evaluated on the same noise draws
(common random numbers), d_i = metric(method, seed i) - metric(reference, seed i). With n seeds,
mean d̄ and sample SD s of the d_i:

    t = d̄ / (s / √n),  p = 2 · P(T_{n-1} > |t|),  95% CI = d̄ ± t_{0.975, n-1} · s / √n

Holm's step-down correction over the m methods compared with the reference (per metric): sort the
p-values, p_(1) <= ... <= p_(m); reject while p_(k) <= α / (m - k + 1), stop at the first that is
not; the adjusted p-value is max_{j<=k} min(1, (m - j + 1) p_(j)). A rejected method is `better` or
`worse` by the sign of d̄, the others show `no detectable difference`.

The smallest detectable difference is the true mean difference that a two-sided paired t-test at
the strictest Holm level α/m detects with probability `power` (80%), given n and the observed s:

    δ_min = (t_{1 - α/(2m), n-1} + t_{power, n-1}) · s / √n

(the usual normal-approximation power formula with t quantiles).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hardware import mean_ci95, mean_std

BETTER, WORSE, NO_DIFFERENCE, TOO_FEW = "better", "worse", "no detectable difference", "too few seeds"


def t_ppf(q: float, dof: int) -> float:
    """The q quantile of Student's t with `dof` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(q, dof))


def t_sf(x: float, dof: int) -> float:
    """P(T_dof > x)."""
    from scipy.stats import t

    return float(t.sf(x, dof))


def paired_differences(values: dict[str, float], reference: dict[str, float]) -> list[float]:
    """value - reference value, seed by seed, over the seeds both have (in the seeds' sorted order)."""
    return [values[s] - reference[s] for s in sorted(set(values) & set(reference), key=str)]


@dataclass(frozen=True)
class PairedTest:
    """A paired t-test of a method against the reference on one metric."""

    n: int
    mean: float
    sd: float
    ci95: float
    p: float

    @property
    def t(self) -> float:
        return self.mean / (self.sd / math.sqrt(self.n)) if self.sd > 0 else math.copysign(math.inf, self.mean)


def paired_test(diffs: Sequence[float]) -> PairedTest:
    """Mean, SD, 95% CI half-width and two-sided p-value of paired differences. Identical differences
    (SD 0) give p = 1 when all are 0 and p = 0 otherwise; fewer than two give NaN."""
    n = len(diffs)
    mean, sd = mean_std(diffs)
    _, ci = mean_ci95(diffs)
    if n < 2:
        return PairedTest(n, mean, sd, math.nan, math.nan)
    if sd == 0:
        return PairedTest(n, mean, sd, ci, 1.0 if mean == 0 else 0.0)
    t = mean / (sd / math.sqrt(n))
    return PairedTest(n, mean, sd, ci, min(1.0, 2 * t_sf(abs(t), n - 1)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order (NaN stays NaN and does not count in m)."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(order)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for k, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - k) * p))
        adjusted[i] = running
    return adjusted


def detectable_difference(n: int, sd: float, m: int = 1, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean difference a paired t-test at level alpha/m detects with `power` (module doc)."""
    if n < 2 or math.isnan(sd):
        return math.nan
    return (t_ppf(1 - alpha / (2 * m), n - 1) + t_ppf(power, n - 1)) * sd / math.sqrt(n)


@dataclass(frozen=True)
class Verdict:
    """One method against the reference on one metric."""

    method: str
    test: PairedTest
    p_holm: float
    verdict: str
    detectable: float

    @property
    def n(self) -> int:
        return self.test.n


def verdicts(diffs: dict[str, Sequence[float]], alpha: float = 0.05, power: float = 0.8) -> list[Verdict]:
    """Verdicts of each method's paired differences to the reference on one metric, Holm-corrected over
    the methods given (those with fewer than two seeds are `too few seeds` and not counted)."""
    tests = {method: paired_test(d) for method, d in diffs.items()}
    adjusted = holm([t.p for t in tests.values()])
    m = sum(not math.isnan(t.p) for t in tests.values())
    out = []
    for (method, test), p in zip(tests.items(), adjusted, strict=True):
        if math.isnan(p):
            verdict = TOO_FEW
        elif p <= alpha:
            verdict = BETTER if test.mean > 0 else WORSE
        else:
            verdict = NO_DIFFERENCE
        out.append(Verdict(method, test, p, verdict, detectable_difference(test.n, test.sd, max(m, 1), alpha, power)))
    return out
