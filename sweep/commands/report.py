"""`sweep report`: per method, its best hyperparameters (validation) and its test robustness over
seeds, from MLflow; printed, saved as Markdown, CSV and plots, logged to the sweep's parent run."""

from __future__ import annotations

import argparse
from typing import Any

from sweep.commands import CommandError, process_seconds
from sweep.commands.run import quiet_chatter, wide_console
from sweep.commands.tables import print_table, table_width, two_lines


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="compare the methods of a sweep (reads MLflow)")
    parser.add_argument("--experiment", default="noisesweep", help="MLflow experiment (default: noisesweep)")
    parser.add_argument("--sweep", help="sweep name (default: the newest sweep in the experiment)")
    parser.add_argument(
        "--tracking-uri", default="sqlite:///mlflow.db", help="MLflow tracking URI (default: sqlite:///mlflow.db)"
    )
    parser.add_argument("--out", help="output folder (default: report/<sweep name>)")
    parser.add_argument(
        "--metric",
        type=selection_metric,
        help="validation metric that picks each method's hyperparameters: val_auc, val_noisy_acc, val_acc, "
        "or a deployment setting's val_auc:KEY / val_acc:KEY:VALUE (default: the sweep's)",
    )
    parser.add_argument(
        "--reference",
        help="method of the paired differences and verdicts (default: noise_injection, else the claim's reference)",
    )
    parser.add_argument(
        "--scale", type=float, help="noise scale of the verdicts and the scatter (default: the base training sigma)"
    )
    parser.add_argument(
        "--results", help="also write the README's tables to RESULTS/<sweep>.md (and claims.md), e.g. docs/results"
    )
    parser.set_defaults(func=run)


def selection_metric(text: str) -> str:
    from sweep.config import SELECT_METRICS, parse_setting_metric

    if text in SELECT_METRICS or parse_setting_metric(text) is not None:
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r}: allowed: {', '.join(SELECT_METRICS)}, val_auc:KEY, val_acc:KEY:VALUE (KEY a setting of eval.deploy)"
    )


def run(args: argparse.Namespace) -> int:
    from sweep.report import ReportError, make_report, table_rows

    quiet_chatter()
    try:
        report = make_report(
            args.tracking_uri,
            args.experiment,
            args.out,
            args.sweep,
            args.metric,
            args.reference,
            args.scale,
            args.results,
        )
    except ReportError as err:
        raise CommandError(str(err)) from None
    console = wide_console()
    if report["incomplete"]:
        console.print(f"[yellow]{report['incomplete']}[/]")
    header, rows = table_rows(report["summaries"], report["reference"])
    title = f"chosen on validation ({report['metric']}); test accuracy mean ± 95% CI over seeds"
    header, rows, notes = compact(header, rows, console.width, report["reference"])
    scales = [i for i, name in enumerate(header) if name.startswith("acc@")]
    knobs = tuple(i for i, name in enumerate(header) if name in ("method", "hyperparameters", "configuration"))
    print_table(console, title, header, rows, notes=notes, left=knobs, droppable=scales)
    print_settings(console, report)
    print_decisions(console, report, report["reference"])
    files = report["files"]
    console.print(f"wrote (and logged to MLflow parent run {report['parent'].info.run_id}, under report/):")
    for path in files.values():
        console.print(f"  {path}", highlight=False, overflow="fold")
    console.print(f"wall time {process_seconds():.1f} s")
    return 0


def print_decisions(console: Any, report: dict[str, Any], reference: str) -> None:
    """The verdicts against the reference and the claim, if the sweep has one."""
    from sweep.report import verdict_rows

    colors = {"better": "green", "worse": "red"}
    if report["verdicts"]:
        header, rows = verdict_rows(report["verdicts"], reference)
        title = f"verdicts vs {reference} (paired over seeds, 95%, Holm over the methods compared)"
        header[3] = "Δ (points, 95% CI)"  # the reference is in the title
        seeds = header.index("seeds")
        if len({row[seeds] for row in rows}) == 1:  # one seed count: said once, in the title
            title = title.replace("paired over seeds", f"paired over {rows[0][seeds]} seeds")
            header, rows = drop_column(header, rows, seeds)
        verdict = header.index("verdict")
        for row in rows:
            color = colors.get(row[verdict])
            row[verdict] = f"[{color}]{row[verdict]}[/]" if color else row[verdict]
        left = tuple(header.index(c) for c in ("method", "metric", "verdict"))
        print_table(console, title, header, rows, left=left)
    claim = report["claim"]
    if claim is not None:
        verdict, header, rows = report["claim_table"]
        console.print(f"[bold]claim[/] ({claim.paper}): {claim.statement}")
        console.print(f"  paper's setting: {claim.paper_setting}\n  here: {claim.setting}")
        left = tuple(i for i, c in enumerate(header) if c in ("comparison", "metric", "verdict", "paper"))
        print_table(console, f"the claim on this sweep: {verdict}", header, [list(r) for r in rows], left=left)


def drop_column(header: list[str], rows: list[list[str]], i: int) -> tuple[list[str], list[list[str]]]:
    return header[:i] + header[i + 1 :], [row[:i] + row[i + 1 :] for row in rows]


def compact(
    header: list[str], rows: list[list[str]], width: int, reference: str
) -> tuple[list[str], list[list[str]], list[str]]:
    """The report's table for a narrow terminal (when the widest cells with one noise scale do not fit):
    `mean ± CI` on two lines, method and hyperparameters in one `configuration` column (a knob's name
    starts with its method's), the seeds column and the reference's name moved under the table.
    Returns the header, the rows and the notes for under the table."""
    if table_width(header, rows) <= width:  # every column, uncut
        return header, rows, []
    notes = []
    method, hyper = header.index("method"), header.index("hyperparameters")
    merged = []
    for row in rows:
        knobs = row[hyper]
        if knobs == "—":
            merged.append(row[method])
        elif all(item.startswith(f"{row[method]}.") for item in knobs.split(", ")):
            merged.append(knobs)
        else:
            merged.append(f"{row[method]}, {knobs}")
    keep = [i for i in range(len(header)) if i != hyper]
    header = ["configuration" if i == method else header[i] for i in keep]
    rows = [[merged[n] if i == method else row[i] for i in keep] for n, row in enumerate(rows)]
    if "seeds" in header and len({row[header.index("seeds")] for row in rows}) == 1:
        col = header.index("seeds")
        notes.append(f"{rows[0][col]} seeds per method")
        header, rows = drop_column(header, rows, col)
    header = ["ΔAUC" if h == f"ΔAUC vs {reference}" else h for h in header]
    notes.append(f"ΔAUC: paired difference to {reference} over shared seeds")
    return header, two_lines(rows), notes


def print_settings(console: Any, report: dict[str, Any]) -> None:
    """One table per deployment setting (axis and unit in the title, so a column is headed by its value
    alone), then the deployment matrix."""
    from sweep.report import matrix_rows, setting_rows

    for s in report["settings"]:
        title = f"{s.setting.key}: test accuracy (%) vs {s.setting.axis_label()}, mean ± 95% CI over seeds"
        header, rows = setting_rows(s)
        header = [header[0], *(h.split("=", 1)[1] for h in header[1:-1]), header[-1]]
        print_table(console, title, header, rows, droppable=list(range(1, len(header) - 1)), full_in="deploy.md")
    if report["settings"]:
        title = "deployment matrix: test AUC (%) per setting (over log10 t on the time axis), mean ± 95% CI over seeds"
        header, rows = matrix_rows(report["summaries"], report["settings"], mark=("[bold]", " *[/]"))
        notes = ["*: the best mean per column; every column's axis and unit in deploy.md"]
        print_table(
            console, title, header, rows, notes=notes, droppable=list(range(1, len(header))), full_in="deploy.md"
        )
