"""`sweep report`: the comparison of a sweep's methods, read from MLflow.

Per method, the hyperparameters are chosen on validation (mean over seeds of the selection metric,
`val_auc` by default), never on test. For the chosen configuration: mean and 95% CI over seeds
(Student t) of the test accuracy at every evaluation scale and of the AUC, and the paired
difference to the reference method (`noise_injection`): per seed, method minus reference, then
mean and 95% CI of those differences; common random numbers make the pairs tight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hardware import mean_ci95 as mean_ci
from sweep.config import ConfigError
from sweep.report.verdicts import trains_under_noise
from sweep.tracking import check_store, client_for, param_value, scale_label, search_all, sqlite_file


class ReportError(Exception):
    """Nothing to report (no store, experiment or sweep): one line, exit 2."""


@dataclass
class TrialRun:
    run_id: str
    key: str
    method: str
    params: dict[str, str]
    metrics: dict[str, float]
    status: str

    @property
    def seed(self) -> str:
        return self.params.get("seed", "")

    @property
    def finished(self) -> bool:
        return "auc" in self.metrics


@dataclass
class MethodSummary:
    method: str
    hyperparameters: dict[str, Any]
    """`{"consistency.weight": 0.3}`: numbers as numbers."""
    selection: float
    seeds: list[str]
    scales: list[float]
    acc: list[tuple[float, float]]  # (mean, 95% CI half-width) per scale
    auc: tuple[float, float]
    diff_acc: list[tuple[float, float]] = field(default_factory=list)  # vs the reference, paired by seed
    diff_auc: tuple[float, float] | None = None
    runs: list[TrialRun] = field(default_factory=list)
    configurations: int = 1
    """Configurations (hyperparameter draws) of the method that finished: its tuning budget."""


# ------------------------------------------------------------------------------- reading MLflow


def load_runs(uri: str, experiment: str, sweep: str | None = None) -> tuple[Any, list[TrialRun]]:
    """The parent run of the newest sweep (named `sweep`, if given) in `experiment`, and its trial runs."""
    database = sqlite_file(uri)
    if database is not None and not database.is_file():
        raise ReportError(f"no MLflow store at {uri}; run `sweep run CONFIG` first or pass --tracking-uri")
    try:
        check_store(uri)
    except ConfigError as err:
        raise ReportError(str(err)) from None
    client = client_for(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = ", ".join(e.name for e in client.search_experiments()) or "(none)"
        raise ReportError(f"--experiment {experiment!r} is not in {uri}; experiments: {names}")
    where = "tags.`sweep.role` = 'parent'" + (f" and tags.`sweep.name` = '{sweep}'" if sweep else "")
    parents = client.search_runs([exp.experiment_id], filter_string=where, order_by=["attributes.start_time DESC"])
    if not parents:
        raise ReportError(f"no sweep{f' named {sweep!r}' if sweep else ''} in experiment {experiment!r}")
    parent = parents[0]
    found = search_all(
        client, exp.experiment_id, f"tags.`sweep.id` = '{parent.data.tags['sweep.id']}' and tags.`sweep.role` = 'trial'"
    )
    runs = [
        TrialRun(
            r.info.run_id,
            r.data.tags.get("sweep.trial_key", ""),
            r.data.tags.get("method", ""),
            dict(r.data.params),
            dict(r.data.metrics),
            r.data.tags.get("sweep.status", r.info.status),
        )
        for r in found
    ]
    return parent, sorted(runs, key=lambda r: r.key)


# ------------------------------------------------------------------------------- the comparison


def varied(runs: list[TrialRun]) -> list[str]:
    """Params that differ between the runs (the searched hyperparameters), seed aside."""
    keys = sorted({k for r in runs for k in r.params})
    return [k for k in keys if k != "seed" and len({r.params.get(k) for r in runs}) > 1]


def select(runs: list[TrialRun], metric: str) -> tuple[dict[str, str], float, list[TrialRun]]:
    """The configuration with the best mean validation `metric` over its seeds."""
    keys = varied(runs)
    groups: dict[tuple, list[TrialRun]] = {}
    for run in runs:
        groups.setdefault(tuple(run.params.get(k) for k in keys), []).append(run)

    def score(group: list[TrialRun]) -> float:
        values = [r.metrics[metric] for r in group if metric in r.metrics]
        return sum(values) / len(values) if values else -math.inf

    best = max(groups, key=lambda g: score(groups[g]))
    hyper = dict(zip(keys, best, strict=True))
    run = groups[best][0]
    if "noise.sigma" in run.params and "noise.sigma" not in hyper and trains_under_noise(run.method, run.params):
        hyper["noise.sigma"] = run.params["noise.sigma"]  # a knob of every method that trains under noise
    return hyper, score(groups[best]), groups[best]


def configurations(runs: list[TrialRun]) -> int:
    """The distinct configurations (seed aside) among `runs`."""
    keys = varied(runs)
    return len({tuple(r.params.get(k) for k in keys) for r in runs})


def summarize(runs: list[TrialRun], metric: str = "val_auc", reference: str = "noise_injection") -> list[MethodSummary]:
    """One summary per method (in order of first appearance), with paired differences to `reference`."""
    finished = [r for r in runs if r.finished]
    if not finished:
        raise ReportError("no finished trial in this sweep yet (failed or stopped trials have no test curve)")
    scales = sorted({float(k.removeprefix("acc_at_")) for r in finished for k in r.metrics if k.startswith("acc_at_")})
    summaries = []
    for method in dict.fromkeys(r.method for r in finished):
        mine = [r for r in finished if r.method == method]
        hyper, score, chosen = select(mine, metric)
        acc = [mean_ci([r.metrics[scale_label(s)] for r in chosen if scale_label(s) in r.metrics]) for s in scales]
        auc = mean_ci([r.metrics["auc"] for r in chosen])
        hyper = {k: param_value(v) for k, v in hyper.items()}
        summaries.append(
            MethodSummary(
                method,
                hyper,
                score,
                sorted(r.seed for r in chosen),
                scales,
                acc,
                auc,
                runs=chosen,
                configurations=configurations(mine),
            )
        )
    ref = next((s for s in summaries if s.method == reference), None)
    if ref is not None:
        for s in summaries:
            s.diff_acc = [paired(s.runs, ref.runs, scale_label(scale)) for scale in scales]
            s.diff_auc = paired(s.runs, ref.runs, "auc")
    return summaries


def paired(runs: list[TrialRun], reference: list[TrialRun], metric: str) -> tuple[float, float]:
    """Mean and CI of (run - reference run with the same seed) over the seeds both have."""
    ref = {r.seed: r.metrics.get(metric) for r in reference}
    diffs = [
        r.metrics[metric] - ref[r.seed]
        for r in runs
        if r.seed in ref and metric in r.metrics and ref[r.seed] is not None
    ]
    return mean_ci(diffs)
