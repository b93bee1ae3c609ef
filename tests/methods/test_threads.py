"""Thread counts from the free cores: never more torch threads than cores not busy with other work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from methods import free_cores, parse_threads, use_threads

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("cores", "load", "free"),
    [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.2, 1), (2, 11.0, 1), (16, 3.2, 13), (16, 0.0, 16)],
)
def test_free_cores_are_the_cores_minus_the_load_at_least_one(cores: int, load: float, free: int) -> None:
    assert free_cores(cores, load) == free


def test_the_default_reads_this_machine() -> None:
    assert 1 <= free_cores() <= (len(__import__("os").sched_getaffinity(0)))


@pytest.mark.parametrize(("text", "value"), [("auto", None), ("1", 1), ("3", 3), (2, 2)])
def test_parse_threads(text: str | int, value: int | None) -> None:
    assert parse_threads(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", ""])
def test_bad_thread_counts_name_the_allowed_values(text: str) -> None:
    with pytest.raises(ValueError, match="'auto' or a positive integer"):
        parse_threads(text)


def test_use_threads_sets_torch_and_caps_at_most() -> None:
    before = torch.get_num_threads()
    try:
        assert use_threads(3) == 3 and torch.get_num_threads() == 3
        assert use_threads(3, most=1) == 1 and torch.get_num_threads() == 1
        assert use_threads(None) == free_cores() == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_cli_refuses_a_bad_thread_count_in_one_line_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", "train", "configs/digits.yaml", "--threads", "0"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--threads: expected 'auto' or a positive integer (got '0')" in proc.stderr
    assert len(proc.stderr.strip().splitlines()[-1]) < 200
