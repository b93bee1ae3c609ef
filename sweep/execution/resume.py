"""What a resumed sweep takes from its records (`sweep.execution.records`): the trials that ended
(not run again; their results count for the search, ASHA and the summary), the unfinished ones (run
in their own folders from their newest checkpoint) and what MLflow may still lack."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from ray.tune.schedulers import ASHAScheduler

from sweep.config import TRIAL_KEY
from sweep.execution.records import TrialRecord, group_number


@dataclass
class Resumption:
    """The records of a sweep's trials, by key (empty for a new sweep)."""

    records: dict[str, TrialRecord] = field(default_factory=dict)
    tracked: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Trial key -> the overrides its MLflow run holds (`sweep.tracking.trial_configs`): the values of
    a trial that has a run but no folder (its driver was killed between the two)."""

    @property
    def ended(self) -> list[TrialRecord]:
        return sorted((r for r in self.records.values() if r.ended), key=lambda r: r.key)

    def done(self) -> dict[str, dict[str, Any]]:
        """Ended trials' last results, for the search's group means."""
        return {r.key: r.last_result for r in self.ended}

    def recorded(self) -> dict[int, dict[str, Any]]:
        """Each group's configuration as its trials ran it (an Optuna draw is asked again with it); a
        group no folder records, as its MLflow run was created."""
        tracked = {group_number(key): config for key, config in self.tracked.items()}
        return tracked | {r.group: r.config for r in self.records.values() if r.config}

    def resume_from(self) -> dict[str, list[str]]:
        return {r.key: r.checkpoints for r in self.records.values() if not r.ended and r.checkpoints}

    def folders(self) -> dict[str, str]:
        return {r.key: r.folder for r in self.records.values()}

    def history(self, metric: str) -> dict[str, list[tuple[int, float]]]:
        """Per trial, (epoch, `metric`) of every report: ASHA's rungs as they were."""
        return {
            r.key: [(int(x["epoch"]), float(x[metric])) for x in r.results if "epoch" in x and metric in x]
            for r in self.records.values()
        }

    def replay(self) -> list[dict[str, Any]]:
        """The ended trials as the MLflow writer's `replay` events: it logs what their runs lack."""
        return [
            {
                "config": r.config, "trial_id": r.trial_id, "status": r.status, "results": r.results,
                "checkpoint": checkpoint_of(r.final) if r.status == "finished" else None, "error": r.error,
            }
            for r in self.ended
        ]  # fmt: skip


def checkpoint_of(path: str | None) -> Any:
    """A local folder as it is; on remote storage (s3://...) a Checkpoint the writer downloads."""
    if path is None or "://" not in path:
        return path
    from ray import tune

    return tune.Checkpoint(path)


def as_result(record: TrialRecord) -> SimpleNamespace:
    """An ended trial as the parts of a Ray `Result` that `results.row_of` reads."""
    error = (record.error or "failed") if record.status == "failed" else None
    return SimpleNamespace(metrics=record.last_result, config=record.config, error=error)


@dataclass(frozen=True)
class TrialDirname:
    """A trial's folder: `KEY_RAYID`, or the folder its key already has (a resumed trial keeps it)."""

    folders: dict[str, str] = field(default_factory=dict)

    def __call__(self, trial: Any) -> str:
        key = trial.config.get(TRIAL_KEY, "trial")
        return self.folders.get(key) or f"{key}_{trial.trial_id}"


class ResumedASHA(ASHAScheduler):
    """ASHA whose rungs start with what the trials reported before a `--resume` (one bracket, as the
    sweep builds it): a resumed trial is judged against the same cutoffs as if it had never stopped."""

    def __init__(self, history: dict[str, list[tuple[int, float]]], ended: set[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history = dict(history)
        for key in ended:
            self._record(self._brackets[0], key, self.history.pop(key, []))

    def _record(self, bracket: Any, trial_id: str, points: list[tuple[int, float]]) -> None:
        for epoch, value in points:
            bracket.on_result(SimpleNamespace(trial_id=trial_id), epoch, self._metric_op * value)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(tune_controller, trial)
        points = self.history.pop(trial.config.get(TRIAL_KEY), [])
        self._record(self._trial_info[trial.trial_id], trial.trial_id, points)
