"""The report's decisions: each method against the reference per metric, and a paper's claim, as
table rows. Pure functions of the chosen trials' test metrics (no MLflow); the statistics are in
`sweep/report/statistics.py`.

A metric is a (label, trial metric key) pair, e.g. ("AUC", "auc") or ("acc@0.2", "acc_at_0.2"), so
the same code serves any number of metrics (more evaluation settings add more pairs).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from hardware import mean_ci95
from sweep.config import Claim, Comparison
from sweep.report.statistics import BETTER, WORSE, Verdict, paired_differences, verdicts
from sweep.tracking import scale_label

Metric = tuple[str, str]


def seed_values(runs: Sequence[Any], key: str) -> dict[str, float]:
    """`key` of each run by its seed (runs: objects with `.seed` and `.metrics`)."""
    return {r.seed: r.metrics[key] for r in runs if key in r.metrics}


def compare(chosen: dict[str, Sequence[Any]], reference: str, metrics: Sequence[Metric]) -> dict[str, list[Verdict]]:
    """Per metric label, the verdict of every method but the reference against it, Holm-corrected over
    those methods. `chosen[method]`: the runs of its chosen configuration. Empty without the reference."""
    if reference not in chosen:
        return {}
    out = {}
    for label, key in metrics:
        ref = seed_values(chosen[reference], key)
        diffs = {m: paired_differences(seed_values(runs, key), ref) for m, runs in chosen.items() if m != reference}
        out[label] = verdicts(diffs)
    return out


def pct(value: float, signed: bool = False) -> str:
    """A fraction as percentage points with one decimal."""
    if math.isnan(value):
        return "n/a"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def diff_cell(v: Verdict) -> str:
    if math.isnan(v.test.ci95):
        return pct(v.test.mean, True)
    return f"{pct(v.test.mean, True)} ± {pct(v.test.ci95)}"


def verdict_rows(compared: dict[str, list[Verdict]], reference: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per method and metric."""
    header = [
        "method",
        "metric",
        "seeds",
        f"Δ vs {reference} (points, 95% CI)",
        "p (Holm)",
        "verdict",
        "smallest detectable Δ",
    ]
    rows = []
    for label, judged in compared.items():
        for v in judged:
            p = "n/a" if math.isnan(v.p_holm) else f"{v.p_holm:.3f}"
            rows.append([v.method, label, str(v.n), diff_cell(v), p, v.verdict, pct(v.detectable)])
    return header, rows


def metric_key(c: Comparison) -> str:
    """The trial metric a comparison reads (as recorded in MLflow)."""
    return "auc" if c.metric == "auc" else scale_label(c.scale or 0.0)


def judge(claim: Claim, values: dict[str, dict[str, dict[str, float]]]) -> list[tuple[Comparison, Verdict, bool]]:
    """Each comparison with its verdict (Holm over the claim's comparisons) and whether it came out as
    the paper says. `values[method][metric key][seed]`: the chosen configuration's test metrics."""
    diffs = {}
    for i, c in enumerate(claim.comparisons):
        mine = values.get(c.method, {}).get(metric_key(c), {})
        ref = values.get(c.reference, {}).get(metric_key(c), {})
        diffs[str(i)] = paired_differences(mine, ref)
    judged = verdicts(diffs)
    return [(c, v, v.verdict == c.expected) for c, v in zip(claim.comparisons, judged, strict=True)]


def outcome(judged: list[tuple[Comparison, Verdict, bool]]) -> str:
    """`holds`, `does not hold` (a difference against the claim) or `not shown` (none detected)."""
    if all(ok for _, _, ok in judged):
        return "holds"
    against = any(v.verdict in (BETTER, WORSE) for _, v, ok in judged if not ok)
    return "does not hold" if against else "not shown"


def claim_values(chosen: dict[str, Sequence[Any]], claim: Claim) -> dict[str, dict[str, dict[str, float]]]:
    """values[method][metric key][seed] of the methods and metrics a claim compares."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for c in claim.comparisons:
        for method in (c.method, c.reference):
            out.setdefault(method, {})[metric_key(c)] = seed_values(chosen.get(method, []), metric_key(c))
    return out


def claim_rows(claim: Claim, chosen: dict[str, Sequence[Any]]) -> tuple[str, list[str], list[list[str]]]:
    """The claim's outcome on this sweep (holds / does not hold / not shown), and one row per comparison:
    the two methods' means ± 95% CI, the paired difference, the verdict and what was expected."""
    values = claim_values(chosen, claim)
    judged = judge(claim, values)
    header = ["comparison", "metric", "seeds", "method (%)", "reference (%)", "Δ (points, 95% CI)", "verdict", "paper"]
    rows = []
    for c, v, ok in judged:
        cells = []
        for method in (c.method, c.reference):
            mean, ci = mean_ci95(list(values[method][metric_key(c)].values()))
            cells.append(pct(mean) if math.isnan(ci) else f"{pct(mean)} ± {pct(ci)}")
        mark = "as claimed" if ok else "not as claimed"
        name = f"{c.method} vs {c.reference}"
        rows.append([name, c.label, str(v.n), *cells, diff_cell(v), v.verdict, f"{c.expected} ({mark})"])
    return outcome(judged), header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def trains_under_noise(method: str, params: dict[str, str]) -> bool:
    """Whether `method` with the run's `method.*` params (MLflow strings, JSON for non-strings) trains
    under the training noise model."""
    from methods import METHODS

    fields = {}
    for key, raw in params.items():
        if key.startswith("method.") and key != "method.name":
            try:
                fields[key.removeprefix("method.")] = json.loads(raw)
            except (json.JSONDecodeError, TypeError):
                fields[key.removeprefix("method.")] = raw
    try:
        return METHODS.get(method).model_validate({"name": method, **fields}).trains_under_noise
    except Exception:  # an old or foreign run: judge by the method's defaults
        return METHODS.get(method)().trains_under_noise if method in METHODS else False
