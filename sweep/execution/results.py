"""The outcome of a sweep run: one row per trial, the Pareto set of the draws, the summary table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from sweep.config import TRIAL_KEY, knob_text, overrides
from sweep.plots import pareto_front
from sweep.tracking import error_line


@dataclass
class SweepOutcome:
    name: str
    path: str
    wall_seconds: float = 0.0
    startup_seconds: float = 0.0
    """Starting (or joining) Ray."""
    fit_seconds: float = 0.0
    """Tuner.fit: the trials, their scheduling and tracking."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """One per trial: key, method, params, status (finished / stopped@EPOCH / failed), metrics, error."""
    interrupted: bool = False
    tracking_failures: list[str] = field(default_factory=list)
    """What did not reach MLflow (the trials' results are still in the Ray folder)."""
    cpus: float = 0.0
    """The CPUs Ray had when the trials started (the whole cluster's)."""
    trial_cpu_seconds: float = 0.0
    """The CPU time of the trials that ended in this run, their training and evaluation only."""

    @property
    def failed(self) -> int:
        return sum(r["status"] == "failed" for r in self.rows)


def row_of(result: Any, interrupted: bool = False) -> dict[str, Any]:
    """A trial's row; with `interrupted` (Ctrl-C), a trial that did not end is `interrupted@EPOCH`."""
    metrics = result.metrics or {}
    params = overrides(result.config or {})
    if result.error is not None:
        status = "failed"
    elif metrics.get("final"):
        status = "finished"
    else:
        status = f"{'interrupted' if interrupted else 'stopped'}@{metrics.get('epoch', 0)}"
    return {
        "key": (result.config or {}).get(TRIAL_KEY, ""),
        "method": params.get("method.name", ""),
        "params": params,
        "status": status,
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        "error": error_line(str(result.error)) if result.error is not None else "",
    }


def group_of(key: str) -> str:
    return key.split("-seed")[0]


def pareto_groups(rows: list[dict[str, Any]], metrics: list[str]) -> list[tuple[str, dict[str, float]]]:
    """Hyperparameter draws (seeds averaged) on the Pareto front of the validation `metrics`."""
    groups: dict[str, list[dict[str, float]]] = {}
    for row in rows:
        if row["status"] == "finished":
            groups.setdefault(group_of(row["key"]), []).append(row["metrics"])
    means = {g: {m: sum(r[m] for r in rs) / len(rs) for m in metrics} for g, rs in groups.items()}
    names = list(means)
    front = pareto_front([tuple(means[g][m] for m in metrics) for g in names])
    return [(names[i], means[names[i]]) for i in front]


def hyperparameters(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """`consistency.weight=0.3` for a row: its params that vary between the trials of its method, seed aside."""
    mine = [r["params"] for r in rows if r["method"] == row["method"]]
    return knob_text(
        {
            key: value
            for key, value in row["params"].items()
            if key not in ("method.name", "seed") and len({repr(p.get(key)) for p in mine}) > 1
        }
    )


def summary_table(outcome: SweepOutcome, width: int = 80) -> Any:
    """A rich table, one row per trial: its configuration (the method, or the knobs that vary within it),
    status and metrics. Numbers never wrap; the validation accuracies join from `width` 110 on; failed
    trials' errors follow in the caption."""
    metrics = {"val_auc": "val auc", "test_acc": "test acc", "auc": "test auc"}  # headers wrap at spaces
    if width >= 110:
        metrics = {"val_acc": "val acc", "val_noisy_acc": "val noisy acc", **metrics}
    errors = [f"{r['key']}: {r['error']}" for r in outcome.rows if r["status"] == "failed"]
    table = Table(
        title=f"sweep {outcome.name}: {len(outcome.rows)} trials in {outcome.wall_seconds:.0f} s",
        caption="\n".join(["failed:", *errors]) if errors else None,
        caption_justify="left",
    )
    table.add_column("trial", no_wrap=True)
    configurations = [hyperparameters(row, outcome.rows) or row["method"] for row in outcome.rows]
    longest = max((len(item) for c in configurations for item in c.split(", ")), default=0)
    table.add_column("configuration", min_width=longest)  # wraps between knobs, never inside one
    table.add_column("status", overflow="fold")
    for header in metrics.values():
        table.add_column(header, justify="right", width=5)  # 0.000 whole; the header wraps
    for row, configuration in zip(outcome.rows, configurations, strict=True):
        m = row["metrics"]
        status = row["status"] if row["status"] != "failed" else "[red]failed[/]"
        values = [format(m[k], ".3f") if k in m else "" for k in metrics]
        table.add_row(row["key"], configuration, status, *values)
    return table
