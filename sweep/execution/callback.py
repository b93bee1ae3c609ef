"""The Ray Tune callback that feeds a sweep's trial events to the MLflow writer (`sweep.tracking`).

A trial waits for the driver to take each report, so the callback only queues events."""

from __future__ import annotations

import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ray.tune import Callback, Stopper

from sweep.config import SearchSpace
from sweep.execution.records import write_ended
from sweep.tracking import TrackingWriter, error_line

REPLAYED = ("status", "results", "checkpoint", "error")  # a replay event's data (Resumption.replay)


class MlflowTracker(Callback):
    """Ray Tune callback logging every trial of the sweep `sweep_id` to MLflow."""

    active: MlflowTracker | None = None
    """The tracker of the running sweep, set up by Ray (the runner reads its interruption and failures)."""

    def __init__(
        self, uri: str, experiment: str, sweep_id: str, sweep_config: dict[str, Any], space: SearchSpace,
        replay: list[dict[str, Any]] | None = None,
    ):  # fmt: skip
        """`replay`: trials that ended before a `--resume` (`Resumption.replay`); the writer logs what their
        runs lack (the driver may have died before logging their end)."""
        self.args = (uri, experiment, sweep_id, sweep_config, space)
        self.replay = list(replay or [])
        self.writer: TrackingWriter | None = None
        self.interrupted = False
        self.disk_full = False
        """A trial failed on a full disk: the sweep stops (`DiskFullStop`), its trials resume later."""

    def __getstate__(self) -> dict[str, Any]:  # pickled into the experiment (tuner.pkl): no live state
        return {**self.__dict__, "writer": None, "interrupted": False, "disk_full": False}

    def setup(self, **info: Any) -> None:
        self.writer = TrackingWriter(*self.args)
        self.writer.start()
        for event in self.replay:
            self.writer.put("replay", event["config"], event["trial_id"], **{k: event[k] for k in REPLAYED})
        MlflowTracker.active = self
        self._watch_sigint()

    def _watch_sigint(self) -> None:
        """Note a Ctrl-C before Ray's handler (installed just before this setup) stops the trials: the
        trials Ray then stops are interrupted, not finished or stopped early."""
        if threading.current_thread() is not threading.main_thread():
            return
        ray_handler = signal.getsignal(signal.SIGINT)

        def on_sigint(sig: int, frame: Any) -> None:
            self.interrupted = True
            if callable(ray_handler):
                ray_handler(sig, frame)  # Ray: one last experiment checkpoint, then stop; a second Ctrl-C kills
            else:
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_sigint)

    def _put(self, kind: str, trial: Any, **data: Any) -> None:
        assert self.writer is not None
        self.writer.put(kind, dict(trial.config), trial.trial_id, **data)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._put("start", trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._put("result", trial, result=dict(result))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.interrupted and not (trial.last_result or {}).get("final"):
            return  # stopped by the Ctrl-C: its run is closed as KILLED at the end
        result = dict(trial.last_result or {})
        folder = None
        if result.get("final") and trial.checkpoint is not None:
            folder = trial.checkpoint.path if trial.checkpoint.filesystem.type_name == "local" else trial.checkpoint
        record_end(trial, "finished" if result.get("final") else "stopped")
        self._put("complete", trial, result=result, checkpoint=folder)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._put("tags", trial, tags={"sweep.retries": str(trial.num_failures)})

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        text = error_text(trial)
        if is_disk_full(text):  # not the trial's fault: it stays unfinished, its run is closed as interrupted
            self.disk_full = self.interrupted = True
            return
        record_end(trial, "failed", error_line(text))
        self._put("error", trial, text=text)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        counts: dict[str, int] = {}
        for trial in trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        done = not self.interrupted and all(t.status in ("TERMINATED", "ERROR") for t in trials)
        if self.writer is not None:
            self.writer.end(counts, done)


class DiskFullStop(Stopper):
    """Stops the whole sweep once a trial failed on a full disk: the next ones would fail the same way."""

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return MlflowTracker.active is not None and MlflowTracker.active.disk_full


def is_disk_full(text: str) -> bool:
    return "No space left on device" in text or "[Errno 28]" in text or "[errno 28]" in text


def record_end(trial: Any, status: str, error: str = "") -> None:
    """The trial's `ended.json`, which `--resume` reads (`sweep.execution.records`)."""
    try:
        epoch = int((trial.last_result or {}).get("epoch", 0))
        write_ended(trial.storage.storage_filesystem, trial.path, status, epoch, error)
    except OSError as err:  # the trial then counts as unfinished and resumes from its checkpoint
        if not is_disk_full(str(err)):  # a full disk stops the sweep with one line of its own
            print(f"sweep: cannot record the end of trial {trial.trial_id}: {err}", file=sys.stderr)


def error_text(trial: Any) -> str:
    """The trial's error with its traceback, as Ray recorded it (terminal colours removed)."""
    path = trial.error_file
    if path and Path(path).is_file():
        text = Path(path).read_text()
    else:
        error = trial.get_error()
        text = str(error) if error is not None else "unknown error"
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
