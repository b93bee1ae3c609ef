"""Interruptions of `sweep run` in a real subprocess (real Ray, real MLflow store): a SIGKILL in the
start-up window (sweep.json written, Ray's experiment state not yet), then a Ctrl-C (SIGINT) while
resuming, then a resume to the end. Every trial ends with one MLflow run holding every epoch once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.sweep.execution.test_sweep_resume import ROOT, finished_keys

EPOCHS = 6
KEYS = [f"{group:04d}-seed{seed}" for group in range(2) for seed in (0, 1)]


def start(command: list[str], tmp_path: Path, log: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = (tmp_path / log).open("w")
    return subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_for(condition, driver: subprocess.Popen, log: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert driver.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "timed out: " + log.read_text()[-2000:]
        time.sleep(0.05)


def kill_session(driver: subprocess.Popen) -> None:
    """The driver's own Ray processes (its session) that outlive it."""
    try:
        os.killpg(driver.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_kill_in_startup_then_ctrl_c_while_resuming_then_resume(
    tmp_path: Path, tiny_base, mlflow_runs, assert_complete
):
    config = {
        **tiny_base,
        "sweep": {
            "name": "intr",
            "grid": {"method.name": ["baseline", "noise_injection"], "seed": [0, 1]},
            "storage_path": str(tmp_path / "runs"),
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "test"},
            "resources": {"max_concurrent": 2},
        },
    }
    path = tmp_path / "intr.yaml"
    path.write_text(yaml.safe_dump(config))
    # the epochs come from --set: the resumed runs must take them from the saved config
    command = [sys.executable, "-m", "sweep", "run", str(path), "-q", "--set", f"train.epochs={EPOCHS}"]
    state = tmp_path / "runs" / "intr" / "sweep.json"

    # 1. SIGKILL as soon as sweep.json exists: Ray's experiment state is not written yet
    driver = start(command, tmp_path, "first.log")
    try:
        wait_for(state.exists, driver, tmp_path / "first.log")
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        kill_session(driver)
    assert not list((tmp_path / "runs" / "intr").glob("experiment_state*.json"))  # the start-up window indeed

    # 2. --resume (no --set) and Ctrl-C once a trial finished
    resume = [*command[:-2], "--resume"]
    driver = start(resume, tmp_path, "second.log")
    try:
        wait_for(lambda: len(finished_keys(tmp_path)) >= 1, driver, tmp_path / "second.log")
        os.kill(driver.pid, signal.SIGINT)
        rc = driver.wait(timeout=120)
    finally:
        kill_session(driver)
    log = (tmp_path / "second.log").read_text()
    assert rc == 130, log[-3000:]
    assert f"sweep run {path} --resume" in log, log[-3000:]
    assert "Traceback" not in log and "Tuner.restore" not in log, log[-3000:]
    parent, runs = mlflow_runs()
    assert parent.info.status == "KILLED"
    assert not [r for r in runs if r.info.status == "RUNNING"], [(r.data.tags, r.info.status) for r in runs]
    assert len(finished_keys(tmp_path)) < len(KEYS), "the sweep ended before the Ctrl-C; make its trials longer"

    # 3. --resume to the end, 4. --resume of the ended sweep: nothing runs, the summary has every trial
    sweep = tmp_path / "runs" / "intr"
    results = []
    for _ in range(2):
        resumed = subprocess.run(
            resume, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
            timeout=400, start_new_session=True,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        rows = [line for line in resumed.stdout.splitlines() if any(f"{key} " in line for key in KEYS)]
        assert len(rows) == len(KEYS) and all("finished" in row for row in rows), resumed.stdout[-3000:]
        assert_complete(KEYS, EPOCHS, sweep)
        results.append({p.name: (p / "result.json").read_bytes() for p in sweep.iterdir() if p.is_dir()})
    assert results[0] == results[1]  # the second resume ran and reported nothing
