"""`sweep report`: per method, its best hyperparameters (validation) and its test robustness over
seeds, from MLflow; printed, saved as Markdown, CSV and plots, logged to the sweep's parent run."""

from __future__ import annotations

import argparse

from sweep.commands import CommandError
from sweep.commands.run import wide_console


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
        choices=["val_auc", "val_noisy_acc", "val_acc"],
        help="validation metric that picks each method's hyperparameters (default: the sweep's)",
    )
    parser.add_argument(
        "--reference", help="method of the paired differences (default: noise_injection, when the sweep has it)"
    )
    parser.add_argument(
        "--scale", type=float, help="noise scale of the clean-vs-noisy scatter (default: training sigma)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from sweep.report import ReportError, columns_that_fit, make_report, table_rows

    try:
        report = make_report(
            args.tracking_uri, args.experiment, args.out, args.sweep, args.metric, args.reference, args.scale
        )
    except ReportError as err:
        raise CommandError(str(err)) from None
    console = wide_console()
    if report["incomplete"]:
        console.print(f"[yellow]{report['incomplete']}[/]")
    header, rows = table_rows(report["summaries"], report["reference"])
    shown = columns_that_fit(header, rows, console.width)
    cut = len(shown) < len(header)
    header, rows = [header[i] for i in shown], [[row[i] for i in shown] for row in rows]
    table = Table(
        title=f"chosen on validation ({report['metric']}); test accuracy mean ± 95% CI over seeds",
        caption="some noise scales left out to fit the terminal: every scale is in report.md" if cut else None,
    )
    for i, column in enumerate(header):
        if column in ("method", "hyperparameters"):  # never cut a method's name; settings wrap
            longest = max((len(row[i]) for row in rows), default=0)
            width = longest if column == "method" else min(longest, 24)
            table.add_column(column, justify="left", min_width=max(width, len(column)), overflow="fold")
        else:
            table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    files = report["files"]
    console.print(
        "wrote "
        + ", ".join(str(p) for p in files.values())
        + f" (also logged to parent run {report['parent'].info.run_id})"
    )
    return 0
