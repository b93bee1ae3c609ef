"""MLflow tracking of a sweep, written only from the driver (a Ray Tune callback): trials never
write the store concurrently and cluster workers need no access to it.

Layout: one parent run per sweep (tag `sweep.id`, the resolved config as `sweep.yaml`); one child
run per trial (tags `mlflow.parentRunId`, `sweep.trial_key`, `ray.trial_id`, `method`, `node_id`,
`hostname`, `sweep.status`; the trial's experiment config flattened as params), per-epoch metrics
at step = epoch, the final curve as `curve/acc` and `curve/ci95` (step = index of the scale) and
`acc_at_<scale>`, `auc`, `val_auc`, `test_acc`; artifacts `curve.json`, `curve.png`,
`model/checkpoint.pt`, and `error.txt` for a failed trial. A restored sweep finds its runs again
by these tags, so every trial keeps exactly one run.

A trial waits for the driver to take each report, so the callback only queues events; one writer
thread turns them into MLflow calls, coalescing the queued metrics of a run into one `log_batch`.
"""

from __future__ import annotations

import json
import math
import queue
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from ray.tune import Callback

from sweep.space import TRIAL_KEY, overrides
from sweep.trainable import CURVE_JSON, CURVE_PNG, HISTORY, MODEL_FILE, TrialSpec

EPOCH_KEYS = ("epoch", "val_acc", "val_noisy_acc", "epoch_time", "lr")  # plus train_*
FINAL_KEYS = ("test_acc", "auc", "val_auc")  # plus acc_at_*, *_seconds and the method's summary()
PLACE_TAGS = ("node_id", "hostname", "device")


def client_for(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(client: Any, name: str, uri: str) -> str:
    """The experiment's id, created if missing. A SQLite store keeps its artifacts beside the file."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)


def search_all(client: Any, experiment: str, filter_string: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment], filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"train": {"lr": 0.1}} -> {"train.lr": "0.1"}; lists and nulls as JSON."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value)
    return flat


def number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class MlflowTracker(Callback):
    """Ray Tune callback logging every trial of the sweep `sweep_id` to MLflow."""

    def __init__(self, uri: str, experiment: str, sweep_id: str, sweep_config: dict[str, Any], spec: TrialSpec):
        self.uri, self.experiment, self.sweep_id = uri, experiment, sweep_id
        self.sweep_config, self.spec = sweep_config, spec
        self._reset()

    def _reset(self) -> None:
        self.client: Any = None
        self.experiment_id = self.parent_id = ""
        self.runs: dict[str, dict[str, Any]] = {}  # trial key -> run id, logged epoch, final logged, config
        self.queue: queue.Queue | None = None
        self.writer: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:  # pickled into the experiment (tuner.pkl): no live state
        state = self.__dict__.copy()
        state.update(client=None, runs={}, experiment_id="", parent_id="", queue=None, writer=None)
        return state

    # --------------------------------------------------------------------------- Tune events (driver loop)

    def setup(self, **info: Any) -> None:
        self._reset()
        self.queue = queue.Queue()
        self.writer = threading.Thread(target=self._write, name="mlflow-writer", daemon=True)
        self.writer.start()

    def _put(self, kind: str, trial: Any, **data: Any) -> None:
        assert self.queue is not None
        self.queue.put((kind, dict(trial.config), trial.trial_id, data))

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._put("start", trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._put("result", trial, result=dict(result))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = dict(trial.last_result or {})
        folder = None
        if result.get("final") and trial.checkpoint is not None:
            folder = trial.checkpoint.path if trial.checkpoint.filesystem.type_name == "local" else trial.checkpoint
        self._put("complete", trial, result=result, checkpoint=folder)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._put("tags", trial, tags={"sweep.retries": str(trial.num_failures)})

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._put("error", trial, text=error_text(trial))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        counts: dict[str, int] = {}
        for trial in trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        done = all(t.status in ("TERMINATED", "ERROR") for t in trials)
        if self.queue is None or self.writer is None:
            return
        self.queue.put(("end", {}, "", {"counts": counts, "done": done}))
        self.queue.put(None)
        self.writer.join()

    # --------------------------------------------------------------------------- the writer thread

    def _write(self) -> None:
        assert self.queue is not None
        try:
            self._connect()
        except Exception as err:  # noqa: BLE001  (tracking must not take the sweep down)
            print(f"sweep: MLflow tracking disabled, cannot reach {self.uri}: {err}", file=sys.stderr)
            while self.queue.get() is not None:
                pass
            return
        while True:
            events = [self.queue.get()]
            while not self.queue.empty():
                events.append(self.queue.get())
            pending: dict[str, list[Any]] = {}  # run id -> metrics not yet sent
            stop = False
            for event in events:
                if event is None:
                    stop = True
                    break
                try:
                    self._handle(event, pending)
                except Exception as err:  # noqa: BLE001
                    print(f"sweep: MLflow logging failed for {event[0]} of {event[2]}: {err}", file=sys.stderr)
            for run_id, metrics in pending.items():
                self._log(run_id, metrics=metrics)
            if stop:
                return

    def _connect(self) -> None:
        self.client = client_for(self.uri)
        self.experiment_id = experiment_id(self.client, self.experiment, self.uri)
        mine = f"tags.`sweep.id` = '{self.sweep_id}'"
        parents = search_all(self.client, self.experiment_id, f"{mine} and tags.`sweep.role` = 'parent'")
        if parents:
            self.parent_id = parents[0].info.run_id
            self.client.update_run(self.parent_id, status="RUNNING")
        else:
            name = self.sweep_config["sweep"]["name"]
            tags = {"sweep.id": self.sweep_id, "sweep.role": "parent", "sweep.name": name, "mlflow.runName": name}
            tags.update(self._sweep_tags())
            self.parent_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
            self.client.log_text(self.parent_id, yaml.safe_dump(self.sweep_config, sort_keys=False), "sweep.yaml")
        for run in search_all(self.client, self.experiment_id, f"{mine} and tags.`sweep.role` = 'trial'"):
            self.runs[run.data.tags["sweep.trial_key"]] = {
                "run_id": run.info.run_id,
                "epoch": int(run.data.metrics.get("epoch", 0)),
                "final": "auc" in run.data.metrics,
                "config": run.data.tags.get("sweep.trial_config", ""),
                "method": run.data.tags.get("method", ""),
            }

    def _sweep_tags(self) -> dict[str, str]:
        section = self.sweep_config["sweep"]
        space = self.spec.space
        metric = section["search"]["metric"]
        return {
            "sweep.search": section["search"]["algorithm"],
            "sweep.metric": metric if isinstance(metric, str) else ",".join(metric),
            "sweep.scheduler": section["scheduler"]["name"],
            "sweep.num_trials": str(space.num_trials),
            "sweep.methods": ",".join(space.methods()),
            "sweep.storage": str(section["storage_path"]),
        }

    def _handle(self, event: tuple, pending: dict[str, list[Any]]) -> None:
        kind, config, trial_id, data = event
        if kind == "end":
            tags = {f"sweep.trials_{status.lower()}": str(n) for status, n in data["counts"].items()}
            self._log(self.parent_id, tags=tags)
            self.client.set_terminated(self.parent_id, "FINISHED" if data["done"] else "KILLED")
            return
        entry = self._run(config, trial_id)
        run_id = entry["run_id"]
        if kind == "result":
            metrics, tags = self._metrics(entry, data["result"])
            pending.setdefault(run_id, []).extend(metrics)
            if tags:
                self._log(run_id, tags=tags)
            return
        self._log(run_id, metrics=pending.pop(run_id, []))  # what the trial reported before this event
        if kind == "start":
            self.client.update_run(run_id, status="RUNNING")
            self._log(run_id, tags={"ray.trial_id": trial_id, "sweep.status": "running"})
        elif kind == "tags":
            self._log(run_id, tags=data["tags"])
        elif kind == "complete":
            self._complete(run_id, data["result"], data["checkpoint"])
        elif kind == "error":
            self.client.log_text(run_id, data["text"], "error.txt")
            self._log(run_id, tags={"sweep.status": "failed", "sweep.error": error_line(data["text"])})
            self.client.set_terminated(run_id, "FAILED")

    def _run(self, config: dict[str, Any], trial_id: str) -> dict[str, Any]:
        """The trial's run: found by its stable key, created with params and tags if missing."""
        key = config.get(TRIAL_KEY) or trial_id
        described = json.dumps(overrides(config), sort_keys=True, default=str)
        entry = self.runs.get(key)
        if entry is not None and entry["config"] != described:
            # a trial the killed driver created but never saved, suggested again with other values
            self.client.delete_run(entry["run_id"])
            entry = None
        if entry is None:
            cfg = self.spec.space.experiment(config)
            name = f"{cfg.method.name}-{key}"
            tags = {
                "mlflow.parentRunId": self.parent_id, "mlflow.runName": name, "sweep.id": self.sweep_id,
                "sweep.role": "trial", "sweep.trial_key": key, "sweep.trial_config": described,
                "ray.trial_id": trial_id, "method": cfg.method.name, "sweep.status": "running",
            }  # fmt: skip
            run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
            self._log(run_id, params=flatten(cfg.model_dump(mode="json")))
            entry = self.runs[key] = {
                "run_id": run_id, "epoch": 0, "final": False, "config": described, "method": cfg.method.name,
            }  # fmt: skip
        return entry

    def _metrics(self, entry: dict[str, Any], result: dict[str, Any]) -> tuple[list[Any], dict[str, str]]:
        """New per-epoch metrics (a resumed trial repeats no epoch), the final ones once, place tags once."""
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = []
        tags = {k: str(result[k]) for k in PLACE_TAGS if result.get(k)} if entry["epoch"] == 0 else {}
        for epoch_metrics in [*json.loads(result.get(HISTORY, "[]")), result]:  # epochs bundled in one report
            epoch = int(epoch_metrics.get("epoch", 0))
            if epoch <= entry["epoch"]:
                continue
            for key, value in epoch_metrics.items():
                if number(value) and (key in EPOCH_KEYS or key.startswith("train_")) and not key.endswith("_seconds"):
                    metrics.append(Metric(key, float(value), stamp, epoch))
            entry["epoch"] = epoch
        if result.get("final") and not entry["final"]:
            own = f"{entry['method']}/"  # the method's summary() scalars
            for key, value in result.items():
                final = key in FINAL_KEYS or key.endswith("_seconds") or key.startswith(("acc_at_", own))
                if number(value) and final:
                    metrics.append(Metric(key, float(value), stamp, 0))
            for step, point in enumerate(json.loads(result["curve"])["points"]):
                metrics.append(Metric("curve/acc", point["mean"], stamp, step))
                ci = point["ci95"]
                metrics.append(Metric("curve/ci95", math.nan if ci is None else ci, stamp, step))
            entry["final"] = True
        return metrics, tags

    def _complete(self, run_id: str, result: dict[str, Any], checkpoint: Any) -> None:
        if result.get("final") and checkpoint is not None:
            if isinstance(checkpoint, str):
                self._log_files(run_id, Path(checkpoint))
            else:  # remote storage (s3://...): download first
                with checkpoint.as_directory() as folder:
                    self._log_files(run_id, Path(folder))
            tags = {"sweep.status": "finished"}
        else:
            tags = {"sweep.status": "stopped_early", "sweep.stopped_at_epoch": str(result.get("epoch", 0))}
        self._log(run_id, tags=tags)
        self.client.set_terminated(run_id, "FINISHED")

    def _log_files(self, run_id: str, folder: Path) -> None:
        for name, artifact_path in ((CURVE_JSON, None), (CURVE_PNG, None), (MODEL_FILE, "model")):
            if (folder / name).exists():
                self.client.log_artifact(run_id, str(folder / name), artifact_path)

    def _log(
        self, run_id: str, metrics: list[Any] = (), params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        from mlflow.entities import Param, RunTag

        params_list = [Param(k, v) for k, v in (params or {}).items()]
        tags_list = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        metrics = list(metrics)
        size = max(len(params_list), len(tags_list), len(metrics))
        for i in range(0, size, 100):  # MLflow's limit per batch
            self.client.log_batch(
                run_id, metrics=metrics[i : i + 100], params=params_list[i : i + 100], tags=tags_list[i : i + 100]
            )


def error_text(trial: Any) -> str:
    """The trial's error with its traceback, as Ray recorded it (terminal colours removed)."""
    path = trial.error_file
    if path and Path(path).is_file():
        text = Path(path).read_text()
    else:
        error = trial.get_error()
        text = str(error) if error is not None else "unknown error"
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def error_line(text: str) -> str:
    """The exception line of a traceback (`FloatingPointError: loss became nan ...`), at most 500 characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if ("Error" in line or "Exception" in line) and ":" in line:
            return line[:500]
    return (lines[-1] if lines else "unknown error")[:500]
