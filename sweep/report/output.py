"""The report's outputs: the tables (terminal and Markdown: the comparison, the verdicts, the claim), the
CSV, the plots, logged to the parent run; with `results`, the README's tables (sweep/report/results.py)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from sweep.config import Claim, knob_text, output_folder
from sweep.plots import plot_panels, plot_pareto
from sweep.report.deploy import deploy_markdown, plot_settings, summarize_settings, sweep_settings, write_deploy_csv
from sweep.report.results import compose, write_results
from sweep.report.summary import MethodSummary, ReportError, TrialRun, load_runs, summarize
from sweep.report.verdicts import claim_rows, compare, pct, verdict_rows
from sweep.tracking import client_for, scale_label


def fmt(pair: tuple[float, float] | None, signed: bool = False) -> str:
    """(mean, CI half-width) of a fraction, in percent: `93.6 ± 1.9`."""
    if pair is None or math.isnan(pair[0]):
        return ""
    mean, ci = pair
    return pct(mean, signed) if math.isnan(ci) else f"{pct(mean, signed)} ± {pct(ci)}"


def table_rows(summaries: list[MethodSummary], reference: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows shared by the terminal table and the Markdown file."""
    scales = summaries[0].scales
    header = ["method", "hyperparameters", "configs", "seeds", *(f"acc@{s:g}" for s in scales), "AUC"]
    header.append(f"ΔAUC vs {reference}")
    rows = []
    for s in summaries:
        hyper = knob_text(s.hyperparameters) or "—"
        diff = "—" if s.method == reference else fmt(s.diff_auc, True)
        rows.append([s.method, hyper, str(s.configurations), str(len(s.seeds)), *(fmt(a) for a in s.acc), fmt(s.auc)])
        rows[-1].append(diff)
    return header, rows


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def column_width(header: list[str], rows: list[list[str]], i: int) -> int:
    """The narrowest column `i` can be without cutting anything: its header's longest word (headers wrap
    at spaces) or its cells' longest line."""
    return max(max(map(len, header[i].split()), default=0), *(len(line) for row in rows for line in row[i].split("\n")))


def columns_that_fit(
    header: list[str], rows: list[list[str]], width: int, droppable: list[int] | None = None
) -> list[int]:
    """Indices of the columns of a table to show in `width` terminal columns: all when they fit, else the
    other columns and as many evenly spaced `droppable` ones (default: the noise scales `acc@...` of a
    `table_rows` table) as fit (first and last first; the middle one when only one fits)."""

    def cell_width(i: int) -> int:  # + rich's padding and border
        return column_width(header, rows, i) + 3

    scale_columns = [i for i, name in enumerate(header) if name.startswith("acc@")] if droppable is None else droppable
    others = [i for i in range(len(header)) if i not in scale_columns]
    n = len(scale_columns) - 1
    for fits in range(len(scale_columns), 1, -1):
        picked = {scale_columns[round(k * n / (fits - 1))] for k in range(fits)}
        if 1 + sum(cell_width(i) for i in set(others) | picked) <= width:
            return sorted(set(others) | picked)
    return sorted(set(others) | set(scale_columns[n // 2 : n // 2 + 1]))


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


def curve_caption(runs: list[TrialRun], summaries: list[MethodSummary], reference: str) -> str:
    """What the curves show: the noise model and axis, the seeds and the Monte Carlo draws."""

    def values(key: str) -> str:
        return "/".join(sorted({str(r.params.get(key, "?")) for r in runs}))

    seeds = "/".join(str(n) for n in sorted({len(s.seeds) for s in summaries}))
    return (
        f"noise: {values('noise.name')} weight noise; x axis: its scale sigma (noise.sigma at evaluation); "
        f"{seeds} seeds per method (hyperparameters chosen on validation); {values('eval.samples')} Monte Carlo "
        f"draws per scale, the same draws for every run; grey dashed: {reference}'s mean"
    )


def sweep_config(client: Any, parent: Any) -> dict[str, Any]:
    """The resolved config the sweep ran with (its parent run's sweep.yaml); {} when missing."""
    import tempfile

    import yaml

    try:
        with tempfile.TemporaryDirectory() as tmp:
            return yaml.safe_load(Path(client.download_artifacts(parent.info.run_id, "sweep.yaml", tmp)).read_text())
    except Exception:  # an old sweep or a foreign store: no claim, default scale
        return {}


def reference_scale(config: dict[str, Any], scales: list[float]) -> float:
    """The scale of the verdicts and the scatter: the base training sigma when it is a noisy evaluation
    scale, else the middle one."""
    sigma = (config.get("noise") or {}).get("sigma")
    if isinstance(sigma, (int, float)) and sigma > 0 and any(math.isclose(sigma, s) for s in scales):
        return float(sigma)
    return scales[len(scales) // 2]


def make_report(
    uri: str,
    experiment: str,
    out: str | Path | None = None,
    sweep: str | None = None,
    metric: str | None = None,
    reference: str | None = None,
    scale: float | None = None,
    results: str | Path | None = None,
) -> dict[str, Any]:
    """Read the sweep from MLflow, write report.md, report.csv, curves.png and pareto.png (with deployment
    settings also deploy.md, deploy.csv, deploy.png) into `out`, log them to the parent run under
    `report/`; with `results`, also the README's tables
    (sweep/report/results.py). `reference` (default: noise_injection, or the reference of the sweep's
    claim when noise_injection is not in the sweep). Returns the summaries, verdicts, claim, files, texts."""
    if out is not None:
        output_folder(out, "--out")
    parent, runs = load_runs(uri, experiment, sweep)
    name = parent.data.tags.get("sweep.name", "sweep")
    methods = {r.method for r in runs}
    if reference is not None and reference not in methods:
        raise ReportError(
            f"--reference {reference!r}: not a method of sweep {name!r}; methods: {', '.join(sorted(methods))}"
        )
    client = client_for(uri)
    config = sweep_config(client, parent)
    raw_claim = (config.get("sweep") or {}).get("claim")
    claim = Claim.model_validate(raw_claim) if raw_claim else None
    if reference is None:
        fallback = claim.comparisons[0].reference if claim is not None else "noise_injection"
        reference = "noise_injection" if "noise_injection" in methods else fallback
    tagged = parent.data.tags.get("sweep.metric", "val_auc")
    metric = metric or (tagged if "," not in tagged else "val_auc")
    summaries = summarize(runs, metric, reference)
    folder = Path(out) if out is not None else Path("report") / name
    folder.mkdir(parents=True, exist_ok=True)
    scales = summaries[0].scales
    if scale is not None and scale not in scales:
        raise ReportError(f"--scale {scale:g}: not an evaluation scale of sweep {name!r}; scales: {scales}")
    scale = scale if scale is not None else reference_scale(config, scales)
    chosen = {s.method: s.runs for s in summaries}
    compared = compare(chosen, reference, [("AUC", "auc"), (f"acc@{scale:g}", scale_label(scale))])

    finished = [r for r in runs if r.finished]
    failed = [r for r in runs if r.status == "failed"]
    stopped = [r for r in runs if r.status == "stopped_early"]
    incomplete = completeness(parent, runs)
    sections = [
        (
            (f"**{incomplete}**. " if incomplete else "")
            + f"Sweep `{name}`: {len(runs)} trials, {len(finished)} finished, {len(stopped)} stopped early, "
            f"{len(failed)} failed. Hyperparameters chosen per method on validation (`{metric}`, mean over seeds; "
            f"`configs`: the configurations each method was tuned over); test accuracy (%) mean ± 95% CI over "
            f"seeds (Student t); ΔAUC = paired difference to `{reference}` over shared seeds.",
            *table_rows(summaries, reference),
        )
    ]
    if compared:
        sections.append(
            (
                f"Verdicts against `{reference}`: paired differences over seeds (same seeds, same noise draws), "
                f"two-sided t-test at 95%, Holm-corrected over the {plural(len(summaries) - 1, 'method')} compared; "
                "smallest detectable Δ: the true difference this many seeds would detect with 80% power at the "
                "strictest Holm level, given the observed spread.",
                *verdict_rows(compared, reference),
            )
        )
    verdict, claim_row, claim_table = None, None, None
    if claim is not None:
        claim_table = verdict, header, rows = claim_rows(claim, chosen)
        text = (
            f"Claim ({claim.paper}): {claim.statement} Paper's setting: {claim.paper_setting}. Here: "
            f"{claim.setting}. Verdict on digits: **{verdict}** (Holm over the claim's comparisons)."
        )
        sections.append((text, header, rows))
        shows = "; ".join(f"{r[0]}, {r[1]}: {r[3]} vs {r[4]}, Δ {r[5]} ({r[6]})" for r in rows)
        claim_row = [name, claim.paper, claim.statement, claim.setting, shows, verdict]
    body = compose(sections)
    md = f"# Robustness comparison: {name}\n\n{body}"
    files = {"md": folder / "report.md", "csv": folder / "report.csv"}
    settings = summarize_settings(summaries, sweep_settings(finished))
    if settings:
        deploy_md = deploy_markdown(summaries, settings, name)
        md += "\n" + deploy_md
        files["deploy_md"] = folder / "deploy.md"
        files["deploy_md"].write_text(deploy_md)
        files["deploy_csv"] = write_deploy_csv(settings, folder / "deploy.csv")
        title = f"{name}: test accuracy per deployment setting, mean and 95% CI over seeds"
        files["deploy_png"] = plot_settings(settings, folder / "deploy.png", title)
    files["md"].write_text(md)
    write_csv(summaries, files["csv"], metric)

    series = {s.method: (s.scales, [a[0] for a in s.acc], [a[1] for a in s.acc]) for s in summaries}
    files["curves"] = plot_panels(
        series, folder / "curves.png", f"{name}: test accuracy, mean and 95% CI over seeds (band clipped to [0, 1])",
        curve_caption(finished, summaries, reference), reference,
    )  # fmt: skip
    files["curves_svg"] = files["curves"].with_suffix(".svg")
    with_scale = [r for r in finished if scale_label(scale) in r.metrics]
    files["pareto"] = plot_pareto(
        [r.method for r in with_scale],
        [(r.metrics["test_acc"], r.metrics[scale_label(scale)]) for r in with_scale],
        folder / "pareto.png",
        "clean test accuracy",
        f"test accuracy at noise scale {scale:g}",
        f"{name}: every finished trial (descriptive; selection used validation)",
    )
    files["pareto_svg"] = files["pareto"].with_suffix(".svg")
    for path in files.values():
        client.log_artifact(parent.info.run_id, str(path), "report")
    if results is not None:
        files.update(write_results(Path(results), name, body, claim_row, files["curves"]))
        if settings:  # DIR/<name>_deploy.md and .png beside the main table
            written = write_results(Path(results), f"{name}_deploy", deploy_md, None, files["deploy_png"])
            files.update({f"deploy_{key}": path for key, path in written.items()})
    return {
        "summaries": summaries,
        "settings": settings,
        "files": files,
        "markdown": md,
        "parent": parent,
        "runs": runs,
        "metric": metric,
        "scale": scale,
        "verdicts": compared,
        "claim": claim,
        "claim_verdict": verdict,
        "claim_table": claim_table,
        "reference": reference,
        "incomplete": incomplete,
    }


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
