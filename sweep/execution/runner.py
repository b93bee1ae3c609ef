"""Run a sweep: start (or join) Ray, build its Tuner (a resumed one from the sweep's records), collect the rows."""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from methods import free_cores
from sweep.config import TRIAL_KEY, SweepConfig, disk_full
from sweep.execution.callback import DiskFullStop, MlflowTracker, is_disk_full
from sweep.execution.cluster import may_autoscale, prepare_cluster, reuse_actors
from sweep.execution.progress import Progress
from sweep.execution.records import clear_ended, read_records
from sweep.execution.results import SweepOutcome, row_of
from sweep.execution.resume import ResumedASHA, Resumption, TrialDirname, as_result
from sweep.execution.runtime import SweepError, check_resources, environment, start_ray
from sweep.execution.searchers import build_search
from sweep.execution.storage import first_difference, read_state, storage_root, sweep_path, write_state
from sweep.execution.trainable import TrialSpec, run_trial
from sweep.tracking import open_store_early, trial_configs


class NoTunerRestoreHint(logging.Filter):
    """Ray ends an interrupted run with "Resume experiment with: Tuner.restore(...)": the sweep prints
    its own `sweep run ... --resume` instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore" not in record.getMessage()


logging.getLogger("ray.tune.tune").addFilter(NoTunerRestoreHint())


class QuietDiskFull(logging.Filter):
    """A full disk ends the sweep with one line (`DiskFull`): Ray's tracebacks of it are dropped."""

    seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        if is_disk_full(text):
            QuietDiskFull.seen = True
            return False
        return not (QuietDiskFull.seen and "Trials did not complete" in text)


for _name in ("ray.tune.execution.tune_controller", "ray.tune.execution.experiment_state", "ray.tune.tune"):
    logging.getLogger(_name).addFilter(QuietDiskFull())


def trial_name(trial: Any) -> str:
    """`consistency-0003-seed1` in Ray's progress table."""
    method = trial.config.get("method.name")
    key = trial.config.get(TRIAL_KEY, trial.trial_id)
    return f"{method}-{key}" if method else str(key)


def build_tuner(
    cfg: SweepConfig, sweep_id: str, before: Resumption, verbose: int, progress: Any = None, free: int | None = None,
) -> Any:  # fmt: skip
    """A fresh Tuner for the trials that have not ended (`before`: the sweep's records, see
    `sweep.execution.resume`). `free`: the cores of this machine not busy with other work (local Ray); a
    trial's torch threads are its CPUs, at most `free` (more threads wait on each other, issue #12)."""
    space = cfg.space
    r = cfg.section.resources
    threads = max(1, int(r.cpus_per_trial))
    spec = TrialSpec(
        space,
        threads if free is None else max(1, min(threads, free)),
        cfg.section.report_interval,
        selection=frozenset(cfg.section.search.setting_keys()),
        resume_from=before.resume_from(),
    )
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec=spec), {"cpu": r.cpus_per_trial, "gpu": r.gpus_per_trial}
    )
    ended = {record.key for record in before.ended}
    shown = []
    if progress is not None:  # a resumed sweep: the trials still to run
        shown.append(
            Progress(space.num_trials - len(ended), cfg.section.search.metrics[0], space.max_epochs(), progress)
        )
    scheduler = None
    if cfg.section.scheduler.name == "asha":
        s = cfg.section.scheduler
        scheduler = ResumedASHA(
            before.history(s.metric), ended, time_attr="epoch", metric=s.metric, mode="max",
            max_t=space.max_epochs(), grace_period=s.grace_period, reduction_factor=s.reduction_factor,
        )  # fmt: skip
    tracker = MlflowTracker(
        cfg.section.tracking.uri, cfg.section.tracking.experiment, sweep_id, cfg.to_dict(), space, before.replay()
    )
    metrics = cfg.section.search.metrics
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=build_search(space, metrics, before.done(), before.recorded()),
            scheduler=scheduler,
            num_samples=max(1, space.num_trials - len(ended)),  # the search says FINISHED when none is left
            max_concurrent_trials=r.max_concurrent,
            reuse_actors=reuse_actors(),  # one node: yes; a cluster: no (sweep/execution/cluster.py)
            trial_dirname_creator=TrialDirname(before.folders()),
            trial_name_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=cfg.name,
            storage_path=storage_root(cfg.section.storage_path),
            # JSON and CSV results are what Ray reads back; its TensorBoard logger cost ~5 ms a report
            callbacks=[tracker, JsonLoggerCallback(), CSVLoggerCallback(), *shown],
            failure_config=tune.FailureConfig(max_failures=cfg.section.failure.retries),
            stop=DiskFullStop(),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            verbose=verbose,
        ),
    )


MIN_FREE = 100 * 2**20
"""Free space a sweep's folder needs at the start: Ray's state, results and two checkpoints per trial."""


def check_free_space(path: str, needed: int = MIN_FREE) -> None:
    """DiskFull (one line naming the folder and the space needed) when a local storage path is short of space."""
    if "://" in path:
        return
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if shutil.disk_usage(folder).free < needed:
        raise disk_full(folder, needed)


def run_sweep(
    cfg: SweepConfig,
    *,
    address: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    verbose: int = 1,
    progress: Any = None,
) -> SweepOutcome:
    """Run (or with `resume`, continue) the sweep; MLflow gets every trial, the outcome the summary.
    `verbose` 1: Ray's progress table and start-up messages; 0: neither. `progress`: a rich console on
    which `sweep.execution.progress.Progress` draws its panel."""
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
    check_free_space(path)

    start = time.perf_counter()
    open_store_early(cfg.section.tracking.uri)  # a new store's tables while Ray starts, not during the trials
    local = not (address or os.environ.get("RAY_ADDRESS"))
    free = free_cores() if local else None  # before our own trials load the machine
    start_ray(address, quiet=verbose == 0)
    if not may_autoscale():  # an autoscaler adds the nodes that waiting trials ask for (cluster.yaml)
        check_resources(cfg)
    prepare_cluster(storage_root(cfg.section.storage_path), cfg.section.resources)  # sweep/execution/cluster.py
    startup = time.perf_counter() - start
    # a resume reads the sweep's own records, never Ray's pickled state (see sweep/execution/records.py)
    before = Resumption(read_records(path) if state is not None else {})
    if state is not None:
        before.tracked = trial_configs(cfg.section.tracking.uri, cfg.section.tracking.experiment, sweep_id)
    for record in before.ended:
        if retry_failed and record.status == "failed":
            clear_ended(path, record)
    tuner = build_tuner(cfg, sweep_id, before, verbose, progress, free)
    if state is None:
        write_state(path, {"id": sweep_id, "config": cfg.to_dict()})
    MlflowTracker.active = None
    fit_start = time.perf_counter()
    cpus = ray.cluster_resources().get("CPU", 0.0)
    quiet = {"RAY_AIR_NEW_OUTPUT": "0"} if verbose == 0 else {}  # the new output prints a header even at 0
    with environment(quiet):
        try:
            results = tuner.fit()
        except Exception:
            check_free_space(path, 2**20)  # Ray fails on a full disk in many ways: name the cause
            raise
    end = time.perf_counter()
    outcome = SweepOutcome(cfg.name, path, end - start, startup, fit_seconds=end - fit_start, cpus=cpus)
    tracker = MlflowTracker.active  # the one Ray set up
    if tracker is not None and tracker.disk_full:
        raise disk_full(path, MIN_FREE)  # the trials stopped, their runs closed: `--resume` once there is space
    ended = results.num_errors + results.num_terminated + len(before.ended)
    interrupted = (tracker is not None and tracker.interrupted) or ended < cfg.space.num_trials
    now = [row_of(result, interrupted) for result in results]
    outcome.trial_cpu_seconds = sum(r["metrics"].get("trial_cpu_seconds", 0.0) for r in now)
    rows = now + [row_of(as_result(r)) for r in before.ended]
    outcome.rows = sorted((r for r in rows if r["key"]), key=lambda row: row["key"])  # never-started: no row
    outcome.interrupted = interrupted
    outcome.tracking_failures = list(tracker.writer.failures) if tracker and tracker.writer else []
    return outcome
