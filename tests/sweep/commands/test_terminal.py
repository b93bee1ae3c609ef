"""What a person sees: `sweep run` and `sweep report` in a pseudo-terminal 80 columns wide (real Ray,
real MLflow): a progress panel instead of Ray's table, no start-up chatter, every line within 80
columns, every number and knob of the tables whole; `-q` piped prints only the summary."""

from __future__ import annotations

import csv
import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import yaml

from sweep.tracking import client_for

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CHATTER = ("Token authentication", "Creating initial MLflow database", "Trial status", "Trial name", "INFO")


def in_pty(args: list[str], cwd: Path, cols: int = 80, rows: int = 40) -> tuple[int, str]:
    """Run `python -m sweep ARGS` with a pseudo-terminal of `cols` x `rows` as stdout and stderr."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep", *args], cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=600), b"".join(chunks).decode()


def screen_lines(text: str) -> list[str]:
    """Every line the terminal showed (each redraw of the live panel too), colours removed."""
    return [part for line in ANSI.sub("", text).split("\n") for part in line.split("\r") if part.strip()]


@pytest.fixture
def tiny_config(tmp_path: Path, tiny_base: dict) -> Path:
    config = {
        **tiny_base,
        "sweep": {
            "grid": {"method.name": ["baseline", "consistency"], "seed": [0, 1]},
            "space": {"consistency": {"weight": {"grid": [0.3, 1.0]}}},
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "tty"},
            "storage_path": str(tmp_path / "runs"),
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_and_report_at_80_columns(tmp_path: Path, tiny_config: Path) -> None:
    deploy = ["--set", "eval.deploy=[{name: sigma}, {name: sigma, noise: {name: lognormal}, samples: 2}]"]
    rc, text = in_pty(["run", str(tiny_config), *deploy], tmp_path)
    lines = screen_lines(text)
    assert rc == 0, text[-3000:]
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert not [line for line in lines if any(c in line for c in CHATTER)]
    assert any(re.search(r"6/6 trials done, 0 running · \d+:\d\d elapsed", line) for line in lines)
    assert any(re.search(r"best val_auc so far: 0\.\d{3} \(00\d\d-seed\d, ", line) for line in lines)
    final = ANSI.sub("", text.rsplit("\x1b[?25h", 1)[-1])  # after the live panel: the summary
    assert len(final.strip().splitlines()) <= 30  # six trials: the summary fits in a screen
    table = [line for line in final.splitlines() if line and line[0] in "│┃┏┡└"]
    assert len(table) >= 9 and all(line.rstrip()[-1] in "│┃┓┩┘" for line in table)  # no column cropped

    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tty").experiment_id], "tags.`sweep.role` = 'trial'")
    assert len(runs) == 6
    rows = {line.split("│")[1].strip(): line for line in final.splitlines() if line.startswith("│ 000")}
    for run in runs:  # each trial's row holds its metrics, whole, and its configuration, whole
        row = rows[run.data.tags["sweep.trial_key"]]
        for metric in ("val_auc", "test_acc", "auc"):
            assert re.search(rf"(?<![\d.]){run.data.metrics[metric]:.3f}(?!\d)", row), (metric, row)
        weight = run.data.params.get("consistency.weight")
        assert (f"consistency.weight={float(weight):.3g}" if weight else "baseline") in row
    assert "browse:  mlflow ui --backend-store-uri sqlite:///" in final.replace("\r\n", "")

    rc, text = in_pty(["report", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--experiment", "tty",
                       "--out", str(tmp_path / "report"), "--reference", "baseline"], tmp_path)  # fmt: skip
    lines = screen_lines(text)
    assert rc == 0, text[-3000:]
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    shown = ANSI.sub("", text)
    table = [line for line in shown.splitlines() if line and line[0] in "│┃┏┡└"]
    assert len(table) >= 6 and all(line.rstrip()[-1] in "│┃┓┩┘" for line in table)
    assert "…" not in shown  # no cell, header or title cut short, in any table
    for title in ("additive: test accuracy", "lognormal: test accuracy", "deployment matrix", "verdicts vs baseline"):
        assert title in shown, title
    with (tmp_path / "report" / "report.csv").open() as f:
        for row in csv.DictReader(f):
            knobs = yaml.safe_load(row["hyperparameters"])
            assert all(isinstance(v, float) for v in knobs.values())  # numbers stored as numbers
            assert all(f"{k}={v:.3g}" in shown for k, v in knobs.items()) and row["method"][:8] in shown  # knobs whole
            scales = [c.removesuffix("_mean") for c in row if c.startswith("acc@") and c.endswith("_mean")]
            columns = [f"{c}_mean" for c in scales if re.search(rf"{re.escape(c)}(?![\d.])", shown)] + [
                "auc_mean",
                "auc_ci95",
            ]  # the scales shown
            assert len(columns) >= 3
            for column in columns:
                assert f"{100 * float(row[column]):.1f}" in shown  # every shown number whole (in %)
    for name in ("curves.png", "curves.svg", "pareto.png", "pareto.svg", "report.md"):
        assert (tmp_path / "report" / name).is_file()


def test_quiet_piped_prints_only_the_summary(tmp_path: Path, tiny_config: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sweep", "run", str(tiny_config), "-q", "--set", "sweep.grid.method.name=[baseline]",
         "--set", "sweep.space={}", "--set", "sweep.grid.seed=[0]", "--set", "train.epochs=1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "" and "\x1b[" not in done.stdout  # piped: plain text
    lines = done.stdout.strip().splitlines()
    assert lines[0].strip().startswith("sweep tiny: 1 trials in") and "0000-seed0" in done.stdout
    assert not [line for line in lines if any(c in line for c in CHATTER)] and len(lines) <= 14  # + wall time
    assert all(len(line) <= 120 for line in lines if line[0] in "│┃┏┡└")  # the table at the piped width
    browse = next(line for line in lines if line.startswith("browse:"))
    assert browse.endswith("--host 127.0.0.1 --port 5000")  # a command stays whole on one line, to copy
