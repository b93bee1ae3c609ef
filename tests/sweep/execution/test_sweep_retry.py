"""`--resume` runs no trial that ended, a failed one included; `--resume --retry-failed` runs the failed
ones again, in their own folders and MLflow runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.execution import run_sweep

pytestmark = pytest.mark.usefixtures("ray_runtime")
TRIALS = 12
"""Optuna's TPE draws its first 10 at random (seeded by the draw's index here): the 12th is guided."""


def test_resume_skips_ended_trials_and_retry_failed_reruns_the_failed(
    tmp_path: Path, make_sweep, mlflow_runs
) -> None:  # fmt: skip
    cfg = make_sweep({"grid": {"train.lr": [0.005, 1e30]}})  # the second one's loss explodes in epoch 1
    first = run_sweep(cfg, verbose=0)
    assert [r["status"] for r in first.rows] == ["finished", "failed"]
    folders = {p.name.split("_")[0]: p for p in (tmp_path / "runs" / "t").iterdir() if p.is_dir()}
    error = (folders["0001"] / "error.txt").read_text()  # "Failure # 1 (occurred at TIME)" and the traceback

    again = run_sweep(cfg, resume=True, verbose=0)  # nothing to run: the summary from the records
    assert [(r["key"], r["status"]) for r in again.rows] == [("0000", "finished"), ("0001", "failed")]
    assert "loss became" in again.rows[1]["error"] and again.failed == 1
    assert (folders["0001"] / "error.txt").read_text() == error

    retried = run_sweep(cfg, resume=True, retry_failed=True, verbose=0)
    assert [(r["key"], r["status"]) for r in retried.rows] == [("0000", "finished"), ("0001", "failed")]
    assert (folders["0001"] / "error.txt").read_text() != error  # ran again, in the same folder
    assert sorted(p.name for p in (tmp_path / "runs" / "t").iterdir() if p.is_dir()) == sorted(
        p.name for p in folders.values()
    )
    _, runs = mlflow_runs()
    assert [(r.data.tags["sweep.trial_key"], r.info.status) for r in runs] == [("0000", "FINISHED"), ("0001", "FAILED")]


def test_resume_asks_an_optuna_group_with_the_values_its_mlflow_run_holds(
    tmp_path: Path, make_sweep, mlflow_runs
) -> None:  # fmt: skip
    """A driver killed after creating a trial's MLflow run, before Ray wrote the trial's folder: the
    resumed search asks that group with the values the run was created with, and the run stays."""
    import shutil

    section = {
        "search": {"algorithm": "optuna", "num_samples": TRIALS}, "space": {"train.lr": {"loguniform": [1e-3, 1e-2]}},
    }  # fmt: skip
    cfg = make_sweep(section)
    run_sweep(cfg, verbose=0)
    _, runs = mlflow_runs()
    before = {r.data.tags["sweep.trial_key"]: (r.info.run_id, r.data.params["train.lr"]) for r in runs}
    last = f"{TRIALS - 1:04d}"  # past TPE's random start-up draws, a new ask depends on what the study was told
    for folder in (tmp_path / "runs" / "t").glob(f"{last}_*"):
        shutil.rmtree(folder)

    again = run_sweep(cfg, resume=True, verbose=0)
    assert [r["status"] for r in again.rows] == ["finished"] * TRIALS
    assert float(again.rows[-1]["params"]["train.lr"]) == float(before[last][1])
    _, runs = mlflow_runs()
    after = {r.data.tags["sweep.trial_key"]: (r.info.run_id, r.data.params["train.lr"]) for r in runs}
    assert after == before  # the same run, with the same value
