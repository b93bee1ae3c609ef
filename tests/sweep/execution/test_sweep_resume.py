"""A driver killed with SIGKILL in the middle of a sweep, Ray's own state then torn (experiment state
truncated, tuner.pkl deleted), a `--resume` killed in its turn, a second `--resume` to the end: no
trial lost, none duplicated, none that had ended run again, in the trial folders and in MLflow."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from sweep.execution.records import read_records

ROOT = Path(__file__).resolve().parents[3]
TRIALS = 6
EPOCHS = 12


def finished_keys(tmp_path: Path) -> set[str]:
    """Trial keys of the FINISHED runs, read straight from the SQLite file (read-only): an MLflow
    client here could race the driver's creation of the store's tables."""
    db = tmp_path / "mlflow.db"
    if not db.exists():
        return set()
    query = (
        "select t.value from runs r join tags t on t.run_uuid = r.run_uuid "
        "where t.key = 'sweep.trial_key' and r.status = 'FINISHED'"
    )
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return {row[0] for row in connection.execute(query)}
    except sqlite3.OperationalError:  # tables not created yet, or locked
        return set()


def kill_when(driver: subprocess.Popen, log: Path, condition) -> None:
    """SIGKILL the driver (and the Ray processes of its session) once `condition()` holds."""
    try:
        deadline = time.monotonic() + 300
        while not condition():
            assert driver.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "timed out: " + log.read_text()[-2000:]
            time.sleep(0.2)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        time.sleep(1)
        try:  # the driver's Ray processes (its session, pgid = its pid) that outlive it
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def tear_ray_state(folder: Path) -> None:
    """What a full disk or a kill in start-up leaves: Ray's experiment state torn, its tuner.pkl gone."""
    states = list(folder.glob("experiment_state*.json"))
    assert states and (folder / "tuner.pkl").exists()
    for state in states:
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    (folder / "tuner.pkl").unlink()


def test_killed_driver_resumes_without_lost_or_duplicated_trials(tmp_path: Path, tiny_base, assert_complete):
    from sweep.tracking import client_for

    config = {
        **tiny_base,
        "train": {**tiny_base["train"], "epochs": EPOCHS},
        "sweep": {
            "name": "kill",
            "grid": {"method.name": ["baseline", "noise_injection", "consistency"], "seed": [0, 1]},
            "storage_path": str(tmp_path / "runs"),
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "test"},
        },
    }
    path = tmp_path / "kill.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "sweep", "run", str(path), "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "first.log").open("w")
    driver = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    kill_when(driver, tmp_path / "first.log", lambda: len(finished_keys(tmp_path)) >= 2)
    before = finished_keys(tmp_path)
    assert 2 <= len(before) < TRIALS, "the sweep ended before the kill; make its trials longer"
    sweep = tmp_path / "runs" / "kill"
    ended = {
        p.name.split("_")[0]: (p / "result.json").read_bytes() for p in sweep.iterdir() if (p / "ended.json").exists()
    }
    tear_ray_state(sweep)

    log = (tmp_path / "second.log").open("w")
    driver = subprocess.Popen(
        [*command, "--resume"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    kill_when(driver, tmp_path / "second.log", lambda: len(finished_keys(tmp_path)) > len(before))
    assert len(finished_keys(tmp_path)) < TRIALS, "the resume ended before the kill; make its trials longer"

    resumed = subprocess.run(
        [*command, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400,
        start_new_session=True,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    expected = [f"{group:04d}-seed{seed}" for group in range(3) for seed in (0, 1)]
    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for run in assert_complete(expected, EPOCHS, sweep):
        assert [m.step for m in client.get_metric_history(run.info.run_id, "curve/acc_vs_sigma_x1000")] == [0, 100, 200]
    trial_dirs = {p.name.split("_")[0]: p for p in sweep.iterdir() if p.is_dir()}
    assert ended and set(ended) <= before
    for key, results in ended.items():  # trials that had ended were not run again, nor reported again
        assert (trial_dirs[key] / "result.json").read_bytes() == results
    # what a next --resume would read: every trial finished (ended.json, or a final checkpoint when the
    # driver died between the trial's last report and its end record)
    assert {key: r.status for key, r in read_records(str(sweep)).items()} == dict.fromkeys(expected, "finished")
