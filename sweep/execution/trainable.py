"""The Ray Tune trial: one experiment of the sweep, reported per epoch, checkpointed, resumable.

Every epoch but the last reports the training loop's metrics with a checkpoint of the TrainState
(or, with `report_seconds`, every few epochs, the epochs in between bundled into the report).
The last report adds the final robustness curve on the test split (common random numbers: eval.seed
is the same for every trial), the validation AUC (the model selection metric; test is never used
to select) and a checkpoint of the deployed model with curve.json and curve.png beside it. A trial
restored from that final checkpoint reports it again without recomputing anything.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from methods import TrainState, resolve_device
from sweep.config import TRIAL_KEY, ExperimentConfig, SearchSpace
from sweep.execution.records import EPOCH_FILE, FINAL_FILE
from sweep.experiment import (
    MODEL_FILE,
    clean_test_accuracy,
    deploy_curves,
    deploy_metrics,
    flatness,
    run_training,
    safe_load,
    save_checkpoint,
    test_curve,
)
from sweep.plots import plot_curve
from sweep.tracking import CURVE_JSON, CURVE_PNG, DEPLOY, DEPLOY_JSON, HISTORY, scale_label
from zoo import DataSplits, build_data, data_shape

STATE_FILE = "state.pt"  # TrainState.state_dict() after an epoch


@dataclass(frozen=True)
class TrialSpec:
    """What every trial of a sweep shares: the search space (with the base experiment) and its threads."""

    space: SearchSpace
    threads: int = 1
    report_seconds: float = 0.0
    """Least time between two reports (each with a checkpoint); 0: every epoch. The epochs in between
    travel in the next report's `history`, so every epoch still reaches MLflow."""
    selection: frozenset[str] = frozenset()
    """Keys of the deployment settings the selection metric names: evaluated on validation too."""
    resume_from: dict[str, list[str]] = field(default_factory=dict)
    """Trial key -> its checkpoints (fs paths or URIs, newest first) from before a `--resume`: a trial
    without a checkpoint of its own starts from the first that loads."""


_DATA: dict[str, DataSplits] = {}  # per worker process; reused actors keep it between trials


def cached_data(cfg: ExperimentConfig) -> DataSplits:
    key = cfg.data.model_dump_json()
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = build_data(cfg.data)
    return _DATA[key]


def where() -> dict[str, Any]:
    """Where the trial runs: recorded in every result and as MLflow tags (clusters)."""
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    return {"node_id": node, "hostname": socket.gethostname()}


def on_given_device(cfg: ExperimentConfig) -> ExperimentConfig:
    """train.device=auto means: CUDA if Ray gave this trial a GPU, else CPU."""
    if cfg.train.device != "auto":
        return cfg
    device = resolve_device("auto").type if ray.get_gpu_ids() else "cpu"
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": device})})


def run_trial(config: dict[str, Any], spec: TrialSpec) -> None:
    """Ray Tune function trainable."""
    start, cpu_start = time.perf_counter(), time.process_time()
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)  # a line per checkpoint
    torch.set_num_threads(spec.threads)
    cfg = on_given_device(spec.space.experiment(config))
    context = {**where(), "trial_key": config.get(TRIAL_KEY, ""), "device": cfg.train.device}

    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            if (Path(folder) / FINAL_FILE).exists():
                tune.report(json.loads((Path(folder) / FINAL_FILE).read_text()))
                return
            resume = safe_load(Path(folder) / STATE_FILE)
    else:
        resume = earlier_state(spec.resume_from.get(context["trial_key"], []))

    data = cached_data(cfg)
    unsent: list[dict[str, float]] = []  # epochs not reported yet (see report_seconds)
    if resume is not None and checkpoint is None:  # the driver may have died before it took these epochs
        unsent = [dict(epoch) for epoch in resume["history"]]
    clock = {"reporting": 0.0, "sent": time.perf_counter()}

    def report(metrics: dict[str, float], state: TrainState) -> None:
        unsent.append(metrics)
        if metrics["epoch"] == cfg.train.epochs or time.perf_counter() - clock["sent"] < spec.report_seconds:
            return  # the last epoch goes with the final curve
        begin = time.perf_counter()
        folder = tempfile.mkdtemp(prefix="noisesweep-")
        torch.save(state.state_dict(), Path(folder) / STATE_FILE)
        (Path(folder) / EPOCH_FILE).write_text(json.dumps({"epoch": state.epoch}))  # read by --resume
        tune.report(bundle(unsent, context), checkpoint=tune.Checkpoint.from_directory(folder))
        shutil.rmtree(folder, ignore_errors=True)
        unsent.clear()
        clock["sent"] = time.perf_counter()
        clock["reporting"] += clock["sent"] - begin

    result = run_training(cfg, data, report=report, resume=resume)
    train_seconds = time.perf_counter() - start
    final, folder = final_report(result.model, data, cfg, result.summary, spec.selection)
    final.update(bundle(unsent, context))
    final["train_seconds"] = train_seconds
    final["report_seconds"] = clock["reporting"]  # waiting for the driver to take the reports, checkpoints
    final["trial_seconds"] = time.perf_counter() - start
    final["trial_cpu_seconds"] = time.process_time() - cpu_start  # all threads; ~ wall time on an idle core
    final["worker_cpu_before_seconds"] = cpu_start  # the worker's CPU before this trial (its start-up, earlier trials)
    (folder / FINAL_FILE).write_text(json.dumps(final))
    tune.report(final, checkpoint=tune.Checkpoint.from_directory(str(folder)))
    shutil.rmtree(folder, ignore_errors=True)


def earlier_state(checkpoints: list[str]) -> dict[str, Any] | None:
    """The newest TrainState among a resumed trial's checkpoints that loads (a kill or a full disk may
    have torn the newest); None: start from scratch."""
    for uri in checkpoints:
        try:
            with tune.Checkpoint(uri).as_directory() as folder:
                return safe_load(Path(folder) / STATE_FILE)
        except Exception as err:  # noqa: BLE001  (torn or unreadable: the next one)
            logging.getLogger(__name__).warning("resume: skipping checkpoint %s (%s)", uri, err)
    return None


def bundle(epochs: list[dict[str, float]], context: dict[str, Any]) -> dict[str, Any]:
    """One report: the newest epoch's metrics, the earlier unreported epochs as JSON in `history`."""
    if not epochs:
        return dict(context)
    report = {**epochs[-1], **context}
    if len(epochs) > 1:
        report[HISTORY] = json.dumps(epochs[:-1])
    return report


def final_report(
    model: torch.nn.Module,
    data: DataSplits,
    cfg: ExperimentConfig,
    summary: dict[str, float],
    selection: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], Path]:
    """Test curve, validation AUC, every deployment setting on test (those in `selection` on validation
    too), flatness, and the deployed model, written to a fresh checkpoint folder; `summary` holds the
    method's own scalars (`TrainResult.summary`)."""
    start = time.perf_counter()
    curve = test_curve(model, data, cfg)
    val_curve = test_curve(model, data, cfg, split="val")
    deploy_start = time.perf_counter()
    deployed = deploy_curves(model, data, cfg, "test", training_curve=curve)
    val_deployed = deploy_curves(model, data, cfg, "val", keys=set(selection), training_curve=val_curve)
    flatness_start = time.perf_counter()
    flat = flatness(model, data, cfg)
    metrics: dict[str, Any] = {
        "final": True,
        "test_acc": clean_test_accuracy(model, data, cfg, curve),
        "auc": curve.auc,
        "val_auc": val_curve.auc,
        **{scale_label(p.scale): p.mean for p in curve.points},
        "curve": json.dumps(curve.to_dict()),
        "eval_seconds": time.perf_counter() - start,
        **summary,
    }
    if cfg.eval.deploy or flat is not None:
        metrics.update(deploy_metrics(deployed, val_deployed, flat))
        metrics[DEPLOY] = json.dumps({key: r.to_dict() for key, r in deployed.items()})
        metrics["deploy_seconds"] = flatness_start - deploy_start
        metrics["flatness_seconds"] = metrics["eval_seconds"] - (flatness_start - start)
    folder = Path(tempfile.mkdtemp(prefix="noisesweep-final-"))
    save_checkpoint(folder / MODEL_FILE, model, cfg, data_shape(data))
    (folder / CURVE_JSON).write_text(json.dumps(curve.to_dict(), indent=1))
    title = f"{cfg.method.name} (seed {cfg.seed}), {cfg.noise.name} noise, test split"
    plot_curve({cfg.method.name: curve}, folder / CURVE_PNG, title=title)
    if deployed:
        (folder / DEPLOY_JSON).write_text(json.dumps(json.loads(metrics[DEPLOY]), indent=1))
    return metrics, folder
