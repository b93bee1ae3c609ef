"""MLflow tracking of a sweep, written only from the driver (fed by the Ray Tune callback of
`sweep.execution`): trials never write the store concurrently and cluster workers need no access to it.

Layout: one parent run per sweep (tag `sweep.id`, the resolved config as `sweep.yaml`, a description
saying how to compare the methods); one child run per trial (tags `mlflow.parentRunId`,
`sweep.trial_key`, `ray.trial_id`, `method`, `node_id`, `hostname`, `sweep.status`; the trial's
experiment config flattened as params, a method's knobs named `consistency.weight`), per-epoch
metrics at step = epoch, the final curve as `curve/acc_vs_sigma_x1000` and `curve/ci95_vs_sigma_x1000`
(step = round(1000 sigma), see `curve_metric`) and `acc_at_<scale>`, `auc`, `val_auc`, `test_acc`;
per deployment setting KEY `curve/KEY/acc`, `curve/KEY/ci95` and `curve/KEY/x` (the axis value; step
= index on the setting's axis), tags `deploy.KEY.axis` and `deploy.KEY.unit`, `auc:KEY`,
`acc:KEY:VALUE` (and `val_*` where selection names the setting), `flatness`; artifacts `curve.json`,
`curve.png`, `deploy.json`, `model/checkpoint.pt`, and `error.txt` for a failed trial. A restored
sweep finds its runs again by these tags, so every trial keeps exactly one run.

A trial waits for the driver to take each report, so the callback only queues events; one writer
thread turns them into MLflow calls, coalescing the queued metrics of a run into one `log_batch`.
"""

from __future__ import annotations

import json
import math
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from sweep.config import TRIAL_KEY, SearchSpace, overrides
from sweep.experiment import MODEL_FILE
from sweep.tracking.client import client_for, experiment_id, search_all
from sweep.tracking.names import (
    CURVE_JSON,
    CURVE_PNG,
    DEPLOY,
    DEPLOY_JSON,
    EPOCH_KEYS,
    FINAL_KEYS,
    HISTORY,
    PLACE_TAGS,
    SETTING_PREFIXES,
    curve_factor,
    curve_metric,
    curve_metrics,
    error_line,
    experiment_params,
    number,
    parent_description,
    sweep_tags,
)

ENDED_STATUSES = ("finished", "stopped_early", "failed")  # a run's `sweep.status` once its trial ended


def first_line(err: Exception) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:300] if text else ''}"


class TrackingWriter:
    """Logs the events of the sweep `sweep_id` to MLflow from one thread (see the module docstring).

    Events are `(kind, trial config, trial id, data)`: `start`, `result` (data: result), `complete`
    (data: result, checkpoint: a local folder or an object with `as_directory()`), `tags` (data: tags),
    `error` (data: text); `end` closes the parent run.
    """

    def __init__(self, uri: str, experiment: str, sweep_id: str, sweep_config: dict[str, Any], space: SearchSpace):
        self.uri, self.experiment, self.sweep_id = uri, experiment, sweep_id
        self.sweep_config, self.space = sweep_config, space
        self.client: Any = None
        self.experiment_id = self.parent_id = ""
        self.runs: dict[str, dict[str, Any]] = {}  # trial key -> run id, logged epoch, final logged, config
        self.queue: queue.Queue = queue.Queue()
        self.failures: list[str] = []
        """What failed to reach the store (one line each): the sweep then exits non-zero."""
        self.thread = threading.Thread(target=self._write, name="mlflow-writer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def put(self, kind: str, config: dict[str, Any], trial_id: str, **data: Any) -> None:
        """Queue one event of a trial (returns at once; the thread logs it)."""
        self.queue.put((kind, config, trial_id, data))

    def end(self, counts: dict[str, int], done: bool) -> None:
        """Close the parent run (FINISHED when `done`, else KILLED) and wait for every queued event."""
        self.queue.put(("end", {}, "", {"counts": counts, "done": done}))
        self.queue.put(None)
        self.thread.join()

    # --------------------------------------------------------------------------- the writer thread

    def _write(self) -> None:
        try:
            self._connect()
        except Exception as err:  # noqa: BLE001  (tracking must not take the sweep down)
            self.failures.append(f"cannot reach {self.uri}: {first_line(err)}")
            print(f"sweep: MLflow tracking disabled, cannot reach {self.uri}: {first_line(err)}", file=sys.stderr)
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
                    self._failed(f"{event[0]} of trial {event[2]}", err)
            for run_id, metrics in pending.items():
                try:
                    self._log(run_id, metrics=metrics)
                except Exception as err:  # noqa: BLE001
                    self._failed(f"metrics of run {run_id}", err)
            if stop:
                return

    def _failed(self, what: str, err: Exception) -> None:
        self.failures.append(f"{what}: {first_line(err)}")
        if len(self.failures) <= 3:  # a dead store fails every event: the first few say enough
            print(f"sweep: MLflow logging failed for {what}: {first_line(err)}", file=sys.stderr)

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
            tags.update(sweep_tags(self.sweep_config["sweep"], self.space))
            tags["mlflow.note.content"] = parent_description(name, self.space, self.experiment)
            self.parent_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
            self.client.log_text(self.parent_id, yaml.safe_dump(self.sweep_config, sort_keys=False), "sweep.yaml")
        for run in search_all(self.client, self.experiment_id, f"{mine} and tags.`sweep.role` = 'trial'"):
            self.runs[run.data.tags["sweep.trial_key"]] = {
                "run_id": run.info.run_id,
                "epoch": int(run.data.metrics.get("epoch", 0)),
                "final": "auc" in run.data.metrics,
                "config": run.data.tags.get("sweep.trial_config", ""),
                "method": run.data.tags.get("method", ""),
                "open": run.info.status == "RUNNING",
                "status": run.data.tags.get("sweep.status", ""),
            }

    def _handle(self, event: tuple, pending: dict[str, list[Any]]) -> None:
        kind, config, trial_id, data = event
        if kind == "end":
            tags = {f"sweep.trials_{status.lower()}": str(n) for status, n in data["counts"].items()}
            self._log(self.parent_id, tags=tags)
            for entry in self.runs.values():
                if entry.get("open"):  # started, never completed: interrupted
                    self._log(entry["run_id"], tags={"sweep.status": "interrupted"})
                    self.client.set_terminated(entry["run_id"], "KILLED")
            self.client.set_terminated(self.parent_id, "FINISHED" if data["done"] else "KILLED")
            return
        if kind == "replay":
            self._replay(config, trial_id, data, pending)
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
        entry["open"] = kind in ("start", "result", "tags")
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

    def _replay(self, config: dict[str, Any], trial_id: str, data: dict[str, Any], pending: dict[str, list]) -> None:
        """A trial that ended before a `--resume`: its reports and its end, unless its run has them already."""
        entry = self.runs.get(config.get(TRIAL_KEY) or trial_id)
        closed = entry is not None and not entry.get("open") and entry.get("status") in ENDED_STATUSES
        if closed and (entry["final"] or data["status"] != "finished"):
            return
        for result in data["results"]:
            self._handle(("result", config, trial_id, {"result": result}), pending)
        if data["status"] == "failed":
            self._handle(("error", config, trial_id, {"text": data["error"]}), pending)
        else:
            last = data["results"][-1] if data["results"] else {}
            self._handle(("complete", config, trial_id, {"result": last, "checkpoint": data["checkpoint"]}), pending)

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
            cfg = self.space.experiment(config)
            name = f"{cfg.method.name}-{key}"
            tags = {
                "mlflow.parentRunId": self.parent_id, "mlflow.runName": name, "sweep.id": self.sweep_id,
                "sweep.role": "trial", "sweep.trial_key": key, "sweep.trial_config": described,
                "ray.trial_id": trial_id, "method": cfg.method.name, "sweep.status": "running",
            }  # fmt: skip
            run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
            self._log(run_id, params=experiment_params(cfg.model_dump(mode="json")))
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
                final = final or key.startswith(SETTING_PREFIXES)
                if number(value) and final:
                    metrics.append(Metric(key, float(value), stamp, 0))
            points = json.loads(result["curve"])["points"]
            factor = curve_factor([p["scale"] for p in points])
            acc, ci95 = curve_metric("acc", factor), curve_metric("ci95", factor)
            for point in points:
                step = round(point["scale"] * factor)
                metrics.append(Metric(acc, point["mean"], stamp, step))
                ci = point["ci95"]
                metrics.append(Metric(ci95, math.nan if ci is None else ci, stamp, step))
            for key, deployed in json.loads(result.get(DEPLOY, "{}")).items():
                metrics += curve_metrics(f"curve/{key}", deployed["curve"], stamp, axis=True)
                setting = deployed["setting"]
                tags.update({f"deploy.{key}.axis": setting["axis"], f"deploy.{key}.unit": setting["unit"]})
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
        for name, artifact_path in ((CURVE_JSON, None), (CURVE_PNG, None), (DEPLOY_JSON, None), (MODEL_FILE, "model")):
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
        # MLflow's limits per batch: 100 params and tags, 1000 entities; each call costs ~5 ms on SQLite
        batches = max(math.ceil(len(metrics) / 900), math.ceil(max(len(params_list), len(tags_list)) / 100))
        for i in range(batches):
            self.client.log_batch(
                run_id,
                metrics=metrics[900 * i : 900 * (i + 1)],
                params=params_list[100 * i : 100 * (i + 1)],
                tags=tags_list[100 * i : 100 * (i + 1)],
            )
