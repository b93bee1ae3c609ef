"""A full disk (a small tmpfs; needs root to mount, skipped otherwise): one line naming the folder and
the space needed, exit 1, nothing torn and no temporary file left; once there is space again, `sweep
run --resume` ends the sweep with one MLflow run per trial."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweep.cli import main

ROOT = Path(__file__).resolve().parents[3]


@contextlib.contextmanager
def tmpfs(tmp_path: Path, size: str) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], timeout=10).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], timeout=10)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill `disk` up to `leave` free bytes."""
    filler = disk / "filler"
    with filler.open("ab") as f:
        try:
            while shutil.disk_usage(disk).free > leave:
                f.write(b"x" * min(2**20, shutil.disk_usage(disk).free - leave))
                f.flush()
        except OSError:
            pass
    return filler


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path, "64k") as mount:
        fill(mount, leave=4096)  # a few KB: enough to start a file, never a checkpoint
        yield mount


def test_train_out_on_a_full_disk(full_disk: Path, capsys) -> None:
    args = ["train", str(ROOT / "configs" / "digits.yaml"), "--out", str(full_disk / "run")]
    args += ["--set", "train.epochs=1", "--set", "eval.samples=1", "--set", "eval.scales=[0]"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert f"no space left in {full_disk / 'run'}" in err and "are needed" in err and "\n" not in err
    assert sorted(p.name for p in full_disk.rglob("*")) == ["filler", "run"]  # no .tmp, no torn checkpoint


def test_sweep_storage_on_a_full_disk_stops_before_ray(full_disk: Path, tmp_path: Path, capsys) -> None:
    args = ["run", str(ROOT / "configs" / "digits.yaml"), "--set", f"sweep.storage_path={full_disk}"]
    args += ["--set", f"sweep.tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert f"no space left in {full_disk}" in err and "at least 100.0 MB are needed" in err and "\n" not in err
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_sweep_storage_filling_up_mid_sweep_then_resume(
    tmp_path: Path, tiny_base, mlflow_runs, assert_complete
) -> None:
    import yaml

    epochs, keys = 4, ["0000-seed0", "0000-seed1", "0000-seed2"]
    with tmpfs(tmp_path, "110m") as disk:  # the sweep asks for 100 MB free at its start
        config = {
            **tiny_base,
            "train": {**tiny_base["train"], "epochs": epochs},
            "sweep": {
                "name": "fd", "grid": {"seed": [0, 1, 2]}, "storage_path": str(disk / "runs"),
                "resources": {"max_concurrent": 1},
                "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "test"},
            },
        }  # fmt: skip
        path = tmp_path / "fd.yaml"
        path.write_text(yaml.safe_dump(config))
        command = [sys.executable, "-m", "sweep", "run", str(path), "-q"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        driver = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while not any(p.stat().st_size for p in (disk / "runs" / "fd").glob("0000-seed0_*/result.json")):
            assert driver.poll() is None and time.monotonic() < deadline, driver.stdout.read().decode()[-3000:]
            time.sleep(0.1)
        filler = fill(disk)
        out = driver.communicate(timeout=240)[0].decode().strip()
        assert driver.returncode == 1, out[-3000:]
        assert out.startswith(f"sweep run: error: no space left in {disk}") and "\n" not in out, out[-3000:]
        parent, runs = mlflow_runs()
        assert parent.info.status == "KILLED" and not [r for r in runs if r.info.status == "RUNNING"]

        filler.unlink()
        resumed = subprocess.run(
            [*command, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400
        )
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        assert_complete(keys, epochs, disk / "runs" / "fd")
