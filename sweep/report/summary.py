"""`sweep report`: the comparison of a sweep's methods, read from MLflow.

Per method, the hyperparameters are chosen on validation (mean over seeds of the selection metric,
`val_auc` by default), never on test. For the chosen configuration: mean and 95% CI over seeds
(Student t) of the test accuracy at every evaluation scale and of the AUC, and the paired
difference to the reference method (`noise_injection`): per seed, method minus reference, then
mean and 95% CI of those differences; common random numbers make the pairs tight.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.evaluate import t_quantile
from sweep.tracking import client_for, search_all


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
    hyperparameters: dict[str, str]
    selection: float
    seeds: list[str]
    scales: list[float]
    acc: list[tuple[float, float]]  # (mean, 95% CI half-width) per scale
    auc: tuple[float, float]
    diff_acc: list[tuple[float, float]] = field(default_factory=list)  # vs the reference, paired by seed
    diff_auc: tuple[float, float] | None = None
    runs: list[TrialRun] = field(default_factory=list)


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and 95% CI half-width (Student t over the values; NaN for fewer than two)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t_quantile(n - 1) * sd / math.sqrt(n)


def scale_key(scale: float) -> str:
    from sweep.trainable import scale_label

    return scale_label(scale)


# ------------------------------------------------------------------------------- reading MLflow


def load_runs(uri: str, experiment: str, sweep: str | None = None) -> tuple[Any, list[TrialRun]]:
    """The parent run of the newest sweep (named `sweep`, if given) in `experiment`, and its trial runs."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ReportError(f"no MLflow store at {uri}; run `sweep run CONFIG` first or pass --tracking-uri")
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
    return dict(zip(keys, best, strict=True)), score(groups[best]), groups[best]


def summarize(runs: list[TrialRun], metric: str = "val_auc", reference: str = "noise_injection") -> list[MethodSummary]:
    """One summary per method (in order of first appearance), with paired differences to `reference`."""
    finished = [r for r in runs if r.finished]
    if not finished:
        raise ReportError("no finished trial in this sweep yet (failed or stopped trials have no test curve)")
    scales = sorted({float(k.removeprefix("acc_at_")) for r in finished for k in r.metrics if k.startswith("acc_at_")})
    summaries = []
    for method in dict.fromkeys(r.method for r in finished):
        hyper, score, chosen = select([r for r in finished if r.method == method], metric)
        acc = [mean_ci([r.metrics[scale_key(s)] for r in chosen if scale_key(s) in r.metrics]) for s in scales]
        auc = mean_ci([r.metrics["auc"] for r in chosen])
        summaries.append(
            MethodSummary(method, hyper, score, sorted(r.seed for r in chosen), scales, acc, auc, runs=chosen)
        )
    ref = next((s for s in summaries if s.method == reference), None)
    if ref is not None:
        for s in summaries:
            s.diff_acc = [paired(s.runs, ref.runs, scale_key(scale)) for scale in scales]
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


# ------------------------------------------------------------------------------- output


def fmt(pair: tuple[float, float] | None, signed: bool = False) -> str:
    if pair is None or math.isnan(pair[0]):
        return ""
    mean, ci = pair
    text = f"{mean:+.3f}" if signed else f"{mean:.3f}"
    return text if math.isnan(ci) else f"{text} ± {ci:.3f}"


def table_rows(summaries: list[MethodSummary], reference: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows shared by the terminal table and the Markdown file."""
    scales = summaries[0].scales
    header = ["method", "hyperparameters", "seeds", *(f"acc@{s:g}" for s in scales), "AUC", f"ΔAUC vs {reference}"]
    rows = []
    for s in summaries:
        hyper = ", ".join(f"{k.removeprefix('method.')}={v}" for k, v in s.hyperparameters.items()) or "—"
        diff = "—" if s.method == reference else fmt(s.diff_auc, True)
        rows.append([s.method, hyper, str(len(s.seeds)), *(fmt(a) for a in s.acc), fmt(s.auc), diff])
    return header, rows


def columns_that_fit(header: list[str], rows: list[list[str]], width: int) -> list[int]:
    """Indices of the columns of a `table_rows` table to show in `width` terminal columns: all when they fit,
    else the other columns and as many evenly spaced noise scales as fit (first and last first; the middle
    one when only one fits)."""

    def cell_width(i: int) -> int:  # widest cell (headers wrap at spaces) + rich's padding and border
        return max(max(map(len, header[i].split())), *(len(row[i]) for row in rows)) + 3

    scale_columns = [i for i, name in enumerate(header) if name.startswith("acc@")]
    others = [i for i in range(len(header)) if i not in scale_columns]
    room = width - 1 - sum(cell_width(i) for i in others)
    fits = max(1, room // max((cell_width(i) for i in scale_columns), default=1))
    if fits >= len(scale_columns):
        return list(range(len(header)))
    n = len(scale_columns) - 1
    picked = {scale_columns[n // 2]} if fits == 1 else {scale_columns[round(k * n / (fits - 1))] for k in range(fits)}
    return sorted(set(others) | picked)


def markdown(summaries: list[MethodSummary], title: str, notes: list[str], reference: str) -> str:
    header, rows = table_rows(summaries, reference)
    lines = [f"# {title}", "", *notes, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(summaries: list[MethodSummary], path: Path, metric: str) -> None:
    scales = summaries[0].scales
    columns = ["method", "hyperparameters", "n_seeds", "seeds", f"selection_{metric}"]
    for s in scales:
        columns += [f"acc@{s:g}_mean", f"acc@{s:g}_ci95", f"diff@{s:g}_mean", f"diff@{s:g}_ci95"]
    columns += ["auc_mean", "auc_ci95", "diff_auc_mean", "diff_auc_ci95"]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for m in summaries:
            row: list[Any] = [m.method, json.dumps(m.hyperparameters), len(m.seeds), " ".join(m.seeds), m.selection]
            for i in range(len(scales)):
                diff = m.diff_acc[i] if m.diff_acc else (math.nan, math.nan)
                row += [*m.acc[i], *diff]
            row += [*m.auc, *(m.diff_auc or (math.nan, math.nan))]
            writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in row])


def reference_scale(runs: list[TrialRun], scales: list[float]) -> float:
    """The noisy scale of the scatter: the training sigma when it is an evaluation scale, else the middle one."""
    sigmas = {r.params.get("noise.sigma") for r in runs}
    if len(sigmas) == 1:
        sigma = float(next(iter(sigmas)) or "nan")
        if sigma in scales and sigma > 0:
            return sigma
    return scales[len(scales) // 2]


def make_report(
    uri: str,
    experiment: str,
    out: str | Path | None = None,
    sweep: str | None = None,
    metric: str | None = None,
    reference: str = "noise_injection",
    scale: float | None = None,
) -> dict[str, Any]:
    """Read the sweep from MLflow, write report.md, report.csv, curves.png and pareto.png into `out`,
    log them to the parent run under `report/`. Returns the summaries, the files and the texts."""
    from sweep.plots import plot_bands, plot_pareto

    parent, runs = load_runs(uri, experiment, sweep)
    name = parent.data.tags.get("sweep.name", "sweep")
    tagged = parent.data.tags.get("sweep.metric", "val_auc")
    metric = metric or (tagged if "," not in tagged else "val_auc")
    summaries = summarize(runs, metric, reference)
    folder = Path(out) if out is not None else Path("report") / name
    folder.mkdir(parents=True, exist_ok=True)

    finished = [r for r in runs if r.finished]
    failed = [r for r in runs if r.status == "failed"]
    stopped = [r for r in runs if r.status == "stopped_early"]
    notes = [
        f"Sweep `{name}` (MLflow experiment `{experiment}`, parent run `{parent.info.run_id}`): {len(runs)} trials, "
        f"{len(finished)} finished, {len(stopped)} stopped early, {len(failed)} failed.",
        f"Hyperparameters chosen per method on validation (`{metric}`, mean over seeds); test accuracy "
        f"mean ± 95% CI over seeds (Student t); ΔAUC = paired difference to `{reference}` over shared seeds.",
    ]
    md = markdown(summaries, f"Robustness comparison: {name}", notes, reference)
    files = {"md": folder / "report.md", "csv": folder / "report.csv"}
    files["md"].write_text(md)
    write_csv(summaries, files["csv"], metric)

    series = {s.method: (s.scales, [a[0] for a in s.acc], [a[1] for a in s.acc]) for s in summaries}
    files["curves"] = plot_bands(series, folder / "curves.png", f"{name}: test accuracy, mean and 95% CI over seeds")
    scales = summaries[0].scales
    scale = scale if scale is not None else reference_scale(finished, scales)
    with_scale = [r for r in finished if scale_key(scale) in r.metrics]
    files["pareto"] = plot_pareto(
        [r.method for r in with_scale],
        [(r.metrics["test_acc"], r.metrics[scale_key(scale)]) for r in with_scale],
        folder / "pareto.png",
        "clean test accuracy",
        f"test accuracy at noise scale {scale:g}",
        f"{name}: every finished trial (descriptive; selection used validation)",
    )
    client = client_for(uri)
    for path in files.values():
        client.log_artifact(parent.info.run_id, str(path), "report")
    return {"summaries": summaries, "files": files, "markdown": md, "parent": parent, "runs": runs, "metric": metric}
