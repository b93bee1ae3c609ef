"""`sweep run CONFIG`: the sweep of a config's `sweep:` section on Ray Tune, tracked in MLflow."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sweep.commands import CommandError, process_seconds
from sweep.commands.train import add_set_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run the sweep of a config on Ray Tune, tracked in MLflow")
    parser.add_argument("config", help="config YAML with a `sweep:` section, e.g. configs/digits.yaml")
    add_set_argument(parser)
    parser.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray runtime)")
    parser.add_argument("--resume", action="store_true", help="continue the sweep after Ctrl-C or a killed driver")
    parser.add_argument("--retry-failed", action="store_true", help="with --resume: run failed trials again")
    parser.add_argument("--dry-run", action="store_true", help="validate and list the trials, run nothing")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("-q", "--quiet", action="store_true", help="print only the final summary")
    shown.add_argument(
        "-v", "--verbose", action="store_true", help="Ray's progress table and Ray's and MLflow's messages"
    )
    parser.set_defaults(func=run)


PIPED_WIDTH = 120
"""Columns of the tables when the output is a file or a pipe (logs, CI): plain text, every column whole."""


def wide_console() -> Any:
    """Rich console: the terminal's width, or `PIPED_WIDTH` plain-text columns when piped."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)


def quiet_chatter() -> None:
    """MLflow's start-up messages (database tables, migrations) only with -v."""
    import logging
    import os

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def ui_command(uri: str) -> str:
    """The `mlflow ui` line for the store a sweep wrote (a server URI is opened directly)."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000\n         then open http://127.0.0.1:5000"


def run(args: argparse.Namespace) -> int:
    from sweep.config import knob_text, load_sweep
    from sweep.tracking import check_store

    cfg = load_sweep(args.config, args.overrides)  # every config error, before Ray starts
    if args.retry_failed and not args.resume:
        raise CommandError("--retry-failed only goes with --resume")
    if args.resume and not [o for o in args.overrides if not o.startswith(LOCATION)]:
        cfg = saved_config(cfg)  # the --set options of the first run need no repeating
    if not args.dry_run:
        check_store(cfg.section.tracking.uri)  # seconds, before Ray: a dead server or a non-database file
    console = wide_console()
    if not args.verbose:
        quiet_chatter()
    space = cfg.space
    s = cfg.section
    if not args.quiet:
        budgets = ", ".join(f"{m} {n}" for m, n in space.budgets().items())
        console.print(
            f"[bold]sweep {cfg.name}[/]: {space.num_trials} trials ({space.num_groups} configurations: {budgets}; "
            f"x {len(space.seeds or [0])} seeds), search {s.search.algorithm}, scheduler {s.scheduler.name}, "
            f"{s.resources.cpus_per_trial:g} CPU / {s.resources.gpus_per_trial:g} GPU per trial"
        )
        for note in space.notes():
            console.print(f"[yellow]note[/]: {note}")
    if args.dry_run:
        return dry_run(console, space)

    from sweep.execution import SweepError, pareto_groups, run_sweep, summary_table

    ready = process_seconds()
    try:
        outcome = run_sweep(
            cfg,
            address=args.address,
            resume=args.resume,
            retry_failed=args.retry_failed,
            verbose=1 if args.verbose else 0,
            progress=None if args.quiet or args.verbose else console,
        )
    except SweepError as err:
        raise CommandError(str(err)) from None
    console.print(summary_table(outcome, console.width))
    metrics = s.search.metrics
    if len(metrics) > 1:
        console.print(f"[bold]Pareto set[/] on validation ({', '.join(metrics)}; seeds averaged):")
        for group, means in pareto_groups(outcome.rows, metrics):
            params = next(r["params"] for r in outcome.rows if r["key"].startswith(group))
            shown = knob_text({k: v for k, v in params.items() if k != "seed"})
            console.print(f"  {group}  " + "  ".join(f"{m}={v:.3f}" for m, v in means.items()) + f"  {shown}")
    console.print(
        f"MLflow: {s.tracking.uri} (experiment {s.tracking.experiment!r}); Ray results: {outcome.path}\n"
        f"compare: sweep report --experiment {s.tracking.experiment} --sweep {cfg.name}\n"
        f"browse:  {ui_command(s.tracking.uri)}",
        highlight=False,
        soft_wrap=not console.is_terminal,  # piped: each command on one line, whole
    )
    total = process_seconds()
    rest = total - ready - outcome.startup_seconds - outcome.fit_seconds
    console.print(
        f"wall time {total:.1f} s: imports and config {ready:.1f} s, Ray start-up {outcome.startup_seconds:.1f} s, "
        f"trials {outcome.fit_seconds:.1f} s, the rest {rest:.1f} s"
    )
    if outcome.trial_cpu_seconds and outcome.cpus and outcome.fit_seconds:
        floor = outcome.trial_cpu_seconds / outcome.cpus
        console.print(
            f"trials' own CPU {outcome.trial_cpu_seconds:.0f} core-s = {floor:.1f} s on {outcome.cpus:g} CPUs "
            f"({floor / outcome.fit_seconds:.2f} of the trials' wall time)"
        )
    if outcome.tracking_failures:
        console.print(
            f"[red]MLflow logging failed[/] ({len(outcome.tracking_failures)} events; first: "
            f"{outcome.tracking_failures[0]}). The trials' results are in {outcome.path} (result.json and "
            f"checkpoints per trial); fix the store and run the sweep again under a new name "
            f"(--set sweep.name=NEW) to have MLflow hold them"
        )
    if outcome.interrupted:
        console.print(f"[yellow]interrupted[/]: continue with  {resume_command(args)}")
        return 130
    if outcome.tracking_failures:
        return 1
    if outcome.failed:
        console.print(f"[red]{outcome.failed} trial(s) failed[/] (errors in the table and in their MLflow runs)")
        return 1
    return 0


LOCATION = ("sweep.name=", "sweep.storage_path=")
"""--set options that say where a sweep's state is: `--resume` needs them again."""


def resume_command(args: argparse.Namespace) -> str:
    """The exact command that continues this sweep (its state holds every other --set)."""
    import shlex

    where = [f"--set {shlex.quote(o)}" for o in args.overrides if o.startswith(LOCATION)]
    return " ".join(["sweep run", shlex.quote(args.config), *where, "--resume"])


def saved_config(cfg: Any) -> Any:
    """The config the sweep started with (its sweep.json), when there is one."""
    from sweep.config import build_sweep, split_raw
    from sweep.execution import SweepError, read_state, sweep_path

    try:
        state = read_state(sweep_path(cfg))
    except SweepError as err:
        raise CommandError(str(err)) from None
    if state is None:
        return cfg
    base, section = split_raw(state["config"])
    return build_sweep(base, section or {}, cfg.name)


def dry_run(console: object, space: Any) -> int:
    """Print the grid points (with their configurations) and seeds of a `sweep.config.SearchSpace`; run nothing."""
    from sweep.config import knob_text

    for i, (point, count) in enumerate(space.draws()):
        print(f"point {i:>3}: {knob_text(point)}" + (f"  x {count} configurations" if count > 1 else ""))
    if space.seeds:
        print(f"seeds: {space.seeds}")
    return 0
