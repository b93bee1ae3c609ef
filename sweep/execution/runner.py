"""Run a sweep: start (or join) Ray, build or restore the Tuner, print the summary table."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep.cluster import may_autoscale, prepare_cluster, reuse_actors
from sweep.space import TRIAL_KEY, overrides
from sweep.sweep_config import SweepConfig

SWEEP_FILE = "sweep.json"  # {"id": ..., "config": ...} in the sweep's storage folder


class SweepError(Exception):
    """A problem found before any trial ran (bad resources, nothing to resume): one line, exit 2."""


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

    @property
    def failed(self) -> int:
        return sum(r["status"] == "failed" for r in self.rows)


# ------------------------------------------------------------------------------- storage


def storage_root(path: str) -> str:
    """Ray wants an absolute path or a URI (s3://..., gs://...)."""
    return path if "://" in path else str(Path(path).expanduser().resolve())


def sweep_path(cfg: SweepConfig) -> str:
    return f"{storage_root(cfg.section.storage_path).rstrip('/')}/{cfg.name}"


def read_state(path: str) -> dict[str, Any] | None:
    import pyarrow.fs

    fs, root = pyarrow.fs.FileSystem.from_uri(path)
    if fs.get_file_info(f"{root}/{SWEEP_FILE}").type == pyarrow.fs.FileType.NotFound:
        return None
    with fs.open_input_stream(f"{root}/{SWEEP_FILE}") as f:
        return json.loads(f.readall())


def write_state(path: str, state: dict[str, Any]) -> None:
    import pyarrow.fs

    fs, root = pyarrow.fs.FileSystem.from_uri(path)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root}/{SWEEP_FILE}") as f:
        f.write(json.dumps(state, indent=1).encode())


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The dotted key where two JSON trees differ first (None when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if a == b else (path or "(top level)")


# ------------------------------------------------------------------------------- Ray


def start_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join `address` (or RAY_ADDRESS), else start a local Ray runtime on this machine's cores."""
    import ray

    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # trials see the driver's working folder
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")  # small window of lost work if the driver dies
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the sweep passes JSON + CSV, no TensorBoard
    # the snapshot that num_to_keep forces after a trial's checkpoints costs ~10 ms here: no warning
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False)


def check_resources(cfg: SweepConfig) -> None:
    """A trial asking for more than any node has would wait forever: say so now."""
    import ray

    r = cfg.section.resources
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    most_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    most_gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    if r.cpus_per_trial > most_cpus:
        raise SweepError(
            f"sweep.resources.cpus_per_trial={r.cpus_per_trial:g} but the largest Ray node has {most_cpus:g} CPUs"
        )
    if r.gpus_per_trial > most_gpus:
        raise SweepError(
            f"sweep.resources.gpus_per_trial={r.gpus_per_trial:g} but the largest Ray node has {most_gpus:g} GPUs"
        )


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def trial_dirname(trial: Any) -> str:
    return f"{trial.config.get(TRIAL_KEY, 'trial')}_{trial.trial_id}"


def trial_name(trial: Any) -> str:
    """`consistency-0003-seed1` in Ray's progress table."""
    method = trial.config.get("method.name")
    key = trial.config.get(TRIAL_KEY, trial.trial_id)
    return f"{method}-{key}" if method else str(key)


def build_tuner(cfg: SweepConfig, sweep_id: str, path: str, restore: bool, retry_failed: bool, verbose: int) -> Any:
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from sweep.search import build_search
    from sweep.tracking import MlflowTracker
    from sweep.trainable import TrialSpec, run_trial

    space = cfg.space
    r = cfg.section.resources
    spec = TrialSpec(space, max(1, int(r.cpus_per_trial)), cfg.section.report_interval)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec=spec), {"cpu": r.cpus_per_trial, "gpu": r.gpus_per_trial}
    )
    if restore:
        return tune.Tuner.restore(path, trainable, resume_errored=retry_failed, restart_errored=False)

    scheduler = None
    if cfg.section.scheduler.name == "asha":
        s = cfg.section.scheduler
        scheduler = tune.schedulers.ASHAScheduler(
            time_attr="epoch",
            metric=s.metric,
            mode="max",
            max_t=space.max_epochs(),
            grace_period=s.grace_period,
            reduction_factor=s.reduction_factor,
        )
    tracker = MlflowTracker(cfg.section.tracking.uri, cfg.section.tracking.experiment, sweep_id, cfg.to_dict(), spec)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=build_search(space, cfg.section.search.metrics),
            scheduler=scheduler,
            num_samples=space.num_trials,
            max_concurrent_trials=r.max_concurrent,
            reuse_actors=reuse_actors(),  # one node: yes; a cluster: no (sweep/cluster.py)
            trial_dirname_creator=trial_dirname,
            trial_name_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=cfg.name,
            storage_path=storage_root(cfg.section.storage_path),
            # JSON and CSV results are what Ray reads back; its TensorBoard logger cost ~5 ms a report
            callbacks=[tracker, JsonLoggerCallback(), CSVLoggerCallback()],
            failure_config=tune.FailureConfig(max_failures=cfg.section.failure.retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            verbose=verbose,
        ),
    )


def run_sweep(
    cfg: SweepConfig,
    *,
    address: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    verbose: int = 1,
) -> SweepOutcome:
    """Run (or with `resume`, continue) the sweep; MLflow gets every trial, the outcome the summary."""
    from ray import tune

    path = sweep_path(cfg)
    state = read_state(path)
    if state is not None and not resume:
        raise SweepError(
            f"{path} already holds sweep {cfg.name!r}; pass --resume to continue it or --set sweep.name=NEW"
        )
    if state is None and resume:
        raise SweepError(f"--resume: no sweep {cfg.name!r} under {storage_root(cfg.section.storage_path)}")
    if state is not None:
        diff = first_difference(state["config"], cfg.to_dict())
        if diff:
            raise SweepError(f"--resume: the config differs from the one sweep {cfg.name!r} started with at {diff}")
    sweep_id = state["id"] if state else uuid.uuid4().hex

    start = time.perf_counter()
    start_ray(address)
    if not may_autoscale():  # an autoscaler adds the nodes that waiting trials ask for (cluster.yaml)
        check_resources(cfg)
    prepare_cluster(storage_root(cfg.section.storage_path), cfg.section.resources)  # sweep/cluster.py
    startup = time.perf_counter() - start
    restore = state is not None and tune.Tuner.can_restore(path)
    tuner = build_tuner(cfg, sweep_id, path, restore, retry_failed, verbose)
    if state is None:
        write_state(path, {"id": sweep_id, "config": cfg.to_dict()})
    fit_start = time.perf_counter()
    quiet = {"RAY_AIR_NEW_OUTPUT": "0"} if verbose == 0 else {}  # the new output prints a header even at 0
    with environment(quiet):
        results = tuner.fit()
    end = time.perf_counter()
    outcome = SweepOutcome(cfg.name, path, end - start, startup, fit_seconds=end - fit_start)
    outcome.rows = [row_of(result) for result in results]
    outcome.rows.sort(key=lambda row: row["key"])
    outcome.interrupted = results.num_errors + results.num_terminated < cfg.space.num_trials
    return outcome


def row_of(result: Any) -> dict[str, Any]:
    from sweep.tracking import error_line

    metrics = result.metrics or {}
    params = overrides(result.config or {})
    if result.error is not None:
        status = "failed"
    elif metrics.get("final"):
        status = "finished"
    else:
        status = f"stopped@{metrics.get('epoch', 0)}"
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
    from sweep.plots import pareto_front

    groups: dict[str, list[dict[str, float]]] = {}
    for row in rows:
        if row["status"] == "finished":
            groups.setdefault(group_of(row["key"]), []).append(row["metrics"])
    means = {g: {m: sum(r[m] for r in rs) / len(rs) for m in metrics} for g, rs in groups.items()}
    names = list(means)
    front = pareto_front([tuple(means[g][m] for m in metrics) for g in names])
    return [(names[i], means[names[i]]) for i in front]


def hyperparameters(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """`weight=0.3` for a row: its params that vary between the trials of its method, seed aside."""
    mine = [r["params"] for r in rows if r["method"] == row["method"]]
    parts = []
    for key, value in row["params"].items():
        if key in ("method.name", "seed") or len({repr(p.get(key)) for p in mine}) == 1:
            continue
        short = key.removeprefix(f"{row['method']}.")
        parts.append(f"{short}={value:.4g}" if isinstance(value, float) else f"{short}={value}")
    return ", ".join(parts)


def summary_table(outcome: SweepOutcome) -> Any:
    """A rich table: one row per trial with its hyperparameters, status and validation/test metrics."""
    from rich.table import Table

    table = Table(title=f"sweep {outcome.name}: {len(outcome.rows)} trials in {outcome.wall_seconds:.0f} s")
    for column in ["trial", "method", "hyperparameters", "seed", "status"]:
        table.add_column(column)
    for column in ["val_acc", "val_noisy", "val_auc", "test_acc", "auc"]:
        table.add_column(column, justify="right")
    for row in outcome.rows:
        m = row["metrics"]
        status = row["status"] if row["status"] != "failed" else f"[red]failed[/]: {row['error'][:80]}"
        metrics = [
            format(m[k], ".4f") if k in m else "" for k in ("val_acc", "val_noisy_acc", "val_auc", "test_acc", "auc")
        ]
        seed = row["params"].get("seed", "")
        table.add_row(row["key"], row["method"], hyperparameters(row, outcome.rows), str(seed), status, *metrics)
    return table
