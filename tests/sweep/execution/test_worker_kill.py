"""A trial's Ray worker killed (SIGKILL) in the middle of training: with `failure.retries` the trial
resumes from its last checkpoint and logs every epoch once; without, it fails alone, recorded as such."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from sweep.execution import run_sweep
from sweep.tracking import client_for

pytestmark = pytest.mark.usefixtures("ray_runtime")
EPOCHS = 40
"""Enough epochs of the tiny trial that the kill, right after its first report, lands while it trains."""


def trial_worker_pid() -> int | None:
    """The worker running the trial: a descendant of this process (the local Ray runtime) titled
    `ray::ImplicitFunc...` (Ray's actor of a function trainable)."""
    import psutil

    for proc in psutil.Process().children(recursive=True):
        try:
            if "ImplicitFunc" in " ".join(proc.cmdline()):
                return proc.pid
        except psutil.Error:
            continue
    return None


@pytest.mark.parametrize("retries", [1, 0])
def test_killed_worker(retries: int, tmp_path: Path, make_sweep, mlflow_runs, tiny_base) -> None:
    base = {**tiny_base, "train": {**tiny_base["train"], "epochs": EPOCHS}}
    section = {"grid": {"seed": [0, 1]}, "failure": {"retries": retries}, "resources": {"max_concurrent": 1}}
    cfg = make_sweep(section, base)
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(run_sweep(cfg, verbose=0)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 240
    results: list[Path] = []
    while not any(p.stat().st_size for p in results):
        assert thread.is_alive() and time.monotonic() < deadline, "the first trial never reported"
        time.sleep(0.05)
        results = list((tmp_path / "runs" / "t").glob("0000-seed0_*/result.json"))
    pid = trial_worker_pid()
    assert pid is not None
    reported = len(results[0].read_text().splitlines())
    os.kill(pid, signal.SIGKILL)
    # a reused worker runs the next trial in the same process: a kill after the first ended tests nothing
    assert reported < EPOCHS, "the first trial ended before the kill"
    thread.join(timeout=300)
    assert outcome, "the sweep did not end"

    statuses = [r["status"] for r in outcome[0].rows]
    _, runs = mlflow_runs()
    assert [r.data.tags["sweep.trial_key"] for r in runs] == ["0000-seed0", "0000-seed1"]  # one run each
    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    if retries:
        assert statuses == ["finished", "finished"]
        assert runs[0].data.tags["sweep.retries"] == "1"
    else:
        assert statuses == ["failed", "finished"] and outcome[0].failed == 1
        assert runs[0].info.status == "FAILED" and runs[0].data.tags["sweep.status"] == "failed"
    for run in runs[1 - retries :]:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")]
        assert sorted(steps) == list(range(1, EPOCHS + 1))  # resumed from its checkpoint: each epoch once
