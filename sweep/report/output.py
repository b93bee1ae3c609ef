"""The report's outputs: the table (terminal and Markdown), the CSV, the plots, logged to the parent run."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from sweep.config import output_folder
from sweep.plots import plot_bands, plot_pareto
from sweep.report.summary import MethodSummary, ReportError, TrialRun, load_runs, summarize
from sweep.tracking import client_for, scale_label


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
    reference: str | None = None,
    scale: float | None = None,
) -> dict[str, Any]:
    """Read the sweep from MLflow, write report.md, report.csv, curves.png and pareto.png into `out`,
    log them to the parent run under `report/`. Returns the summaries, the files and the texts.
    `reference`: the method of the paired differences (default `noise_injection`, when the sweep has it)."""
    if out is not None:
        output_folder(out, "--out")
    parent, runs = load_runs(uri, experiment, sweep)
    name = parent.data.tags.get("sweep.name", "sweep")
    methods = sorted({r.method for r in runs})
    if reference is not None and reference not in methods:
        raise ReportError(f"--reference {reference!r}: not a method of sweep {name!r}; methods: {', '.join(methods)}")
    reference = reference or "noise_injection"
    tagged = parent.data.tags.get("sweep.metric", "val_auc")
    metric = metric or (tagged if "," not in tagged else "val_auc")
    summaries = summarize(runs, metric, reference)
    scales = summaries[0].scales
    if scale is not None and scale not in scales:
        raise ReportError(f"--scale {scale:g}: not an evaluation scale of sweep {name!r}; scales: {scales}")
    folder = Path(out) if out is not None else Path("report") / name
    folder.mkdir(parents=True, exist_ok=True)

    finished = [r for r in runs if r.finished]
    failed = [r for r in runs if r.status == "failed"]
    stopped = [r for r in runs if r.status == "stopped_early"]
    incomplete = completeness(parent, runs)
    notes = [*([f"**{incomplete}**"] if incomplete else []),
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
    scale = scale if scale is not None else reference_scale(finished, scales)
    with_scale = [r for r in finished if scale_label(scale) in r.metrics]
    files["pareto"] = plot_pareto(
        [r.method for r in with_scale],
        [(r.metrics["test_acc"], r.metrics[scale_label(scale)]) for r in with_scale],
        folder / "pareto.png",
        "clean test accuracy",
        f"test accuracy at noise scale {scale:g}",
        f"{name}: every finished trial (descriptive; selection used validation)",
    )
    client = client_for(uri)
    for path in files.values():
        client.log_artifact(parent.info.run_id, str(path), "report")
    return {
        "summaries": summaries, "files": files, "markdown": md, "parent": parent, "runs": runs, "metric": metric,
        "reference": reference, "incomplete": incomplete,
    }  # fmt: skip


def completeness(parent: Any, runs: list[TrialRun]) -> str:
    """'' for a sweep that ran to its end, else a line saying how many of its trials ended."""
    total = int(parent.data.tags.get("sweep.num_trials", len(runs)))
    ended = sum(r.status in ("finished", "failed", "stopped_early") for r in runs)
    if ended >= total and parent.info.status == "FINISHED":
        return ""
    return (
        f"incomplete sweep: {ended} of {total} trials ended ({sum(r.finished for r in runs)} finished); "
        "`sweep run CONFIG --resume` runs the rest"
    )
