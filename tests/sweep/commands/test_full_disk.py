"""A full disk (a small tmpfs; needs root to mount, skipped otherwise): one line naming the folder and
the space needed, exit 1, nothing torn and no temporary file left."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweep.cli import main

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], timeout=10).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        filler = mount / "filler"
        with filler.open("wb") as f:  # leave a few KB: enough to start a file, never a checkpoint
            f.write(b"x" * (60 * 1024))
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], timeout=10)


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
