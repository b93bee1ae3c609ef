"""The deployment matrix of a sweep: every method (its hyperparameters chosen on validation, as in the
main table) under every deployment setting of `eval.deploy`, AUC mean ± 95% CI over seeds, the best
mean per column marked; one table per setting (accuracy at each value on its axis, with its unit); a
figure with one panel per setting; flatness (Hessian lambda_max) per method where it was measured.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from hardware import DeploySetting, deploy_settings
from sweep.config import setting_metric
from sweep.plots import Panel, plot_setting_panels
from sweep.report.summary import MethodSummary, TrialRun, mean_ci
from sweep.report.verdicts import markdown_table, pct

Pair = tuple[float, float]


@dataclass
class SettingSummary:
    """One setting: per method, accuracy (mean, CI) at each axis value and the setting's AUC."""

    setting: DeploySetting
    acc: dict[str, list[Pair]]
    auc: dict[str, Pair]

    @property
    def best(self) -> str | None:
        """The method with the highest mean AUC."""
        known = {m: a[0] for m, a in self.auc.items() if not math.isnan(a[0])}
        return max(known, key=known.__getitem__) if known else None


def sweep_settings(runs: list[TrialRun]) -> list[DeploySetting]:
    """The settings of the sweep's trials (`eval.deploy` as logged with every trial's params)."""
    for run in runs:
        raw = run.params.get("eval.deploy")
        if raw and raw != "[]":
            return deploy_settings(json.loads(raw))
    return []


def summarize_settings(summaries: list[MethodSummary], settings: list[DeploySetting]) -> list[SettingSummary]:
    """Per setting, each method's chosen runs (seeds) averaged; a run without the metric is left out."""
    out = []
    for s in settings:

        def over_seeds(runs: list[TrialRun], metric: str) -> Pair:
            return mean_ci([r.metrics[metric] for r in runs if metric in r.metrics])

        acc = {m.method: [over_seeds(m.runs, setting_metric(s.key, v)) for v in s.values] for m in summaries}
        auc = {m.method: over_seeds(m.runs, setting_metric(s.key)) for m in summaries}
        out.append(SettingSummary(s, acc, auc))
    return out


def flatness(summaries: list[MethodSummary]) -> dict[str, Pair]:
    """Hessian lambda_max mean ± CI over each method's chosen runs (methods without it left out)."""
    found = {m.method: [r.metrics["flatness"] for r in m.runs if "flatness" in r.metrics] for m in summaries}
    return {method: mean_ci(values) for method, values in found.items() if values}


def cell(pair: Pair, percent: bool = True) -> str:
    """(mean, CI half-width): `93.6 ± 1.9` (percent) or `3.41 ± 1.11`."""
    mean, ci = pair
    text = pct if percent else (lambda v: f"{v:.2f}")
    if math.isnan(mean):
        return "—"
    return text(mean) if math.isnan(ci) else f"{text(mean)} ± {text(ci)}"


def matrix_rows(
    summaries: list[MethodSummary], settings: list[SettingSummary], mark: tuple[str, str] = ("**", "**")
) -> tuple[list[str], list[list[str]]]:
    """Methods x settings: each setting's AUC (its best mean marked with `mark`), then flatness if measured."""
    flat = flatness(summaries)
    header = ["method", *(f"{s.setting.key} AUC (%)" for s in settings)] + (["flatness λmax"] if flat else [])
    rows = []
    for m in summaries:
        row = [m.method]
        for s in settings:
            text = cell(s.auc[m.method])
            row.append(f"{mark[0]}{text}{mark[1]}" if s.best == m.method else text)
        rows.append(row + ([cell(flat.get(m.method, (math.nan, math.nan)), percent=False)] if flat else []))
    return header, rows


def setting_rows(s: SettingSummary) -> tuple[list[str], list[list[str]]]:
    """One setting: method x axis values (accuracy mean ± CI over seeds) and its AUC."""
    header = ["method", *(f"{s.setting.axis}={s.setting.format_value(v)}" for v in s.setting.values), "AUC"]
    rows = [[method, *(cell(a) for a in acc), cell(s.auc[method])] for method, acc in s.acc.items()]
    return header, rows


def deploy_markdown(summaries: list[MethodSummary], settings: list[SettingSummary], name: str) -> str:
    """The matrix, what each column means, then one table per setting."""
    lines = [
        f"## Deployment matrix: {name}",
        "",
        "Test AUC (%: mean accuracy over each setting's axis; over log10 of it on a log axis) mean ± 95% CI "
        "over seeds, hyperparameters chosen on validation as above; **bold**: the best mean per column.",
        "",
        *markdown_table(*matrix_rows(summaries, settings)),
        "",
        *(f"- `{s.setting.key}`: {s.setting.name}, axis {s.setting.axis_label()}" for s in settings),
    ]
    for s in settings:
        lines += ["", f"### {s.setting.key}: test accuracy (%) vs {s.setting.axis_label()}", ""]
        lines += markdown_table(*setting_rows(s))
    return "\n".join(lines) + "\n"


def write_deploy_csv(settings: list[SettingSummary], path: Path) -> Path:
    """Long format: one row per method, setting and axis value (value empty on the AUC rows)."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "setting", "axis", "unit", "value", "metric", "mean", "ci95"])
        for s in settings:
            st = s.setting
            for method, accs in s.acc.items():
                for v, (mean, ci) in zip(st.values, accs, strict=True):
                    writer.writerow([method, st.key, st.axis, st.unit, v, "acc", *blank_nan(mean, ci)])
                writer.writerow([method, st.key, st.axis, st.unit, "", "auc", *blank_nan(*s.auc[method])])
    return path


def blank_nan(*values: float) -> list[float | str]:
    return ["" if math.isnan(v) else v for v in values]


def plot_settings(settings: list[SettingSummary], path: Path, title: str) -> Path:
    """One small panel per setting, x labelled with its axis and unit."""
    panels = [
        Panel(
            s.setting.key,
            s.setting.axis_label(),
            s.setting.log_axis,
            {m: (s.setting.values, [a[0] for a in acc], [a[1] for a in acc]) for m, acc in s.acc.items()},
        )
        for s in settings
    ]
    return plot_setting_panels(panels, path, title)
