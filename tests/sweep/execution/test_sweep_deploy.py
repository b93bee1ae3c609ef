"""The deployment matrix end to end (real Ray, real SQLite MLflow): every trial judged under several
settings with their own axes and flatness, selection on a setting's validation AUC, the report's
matrix, per-setting tables and panels, and `sweep report` printing them."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from sweep.execution import run_sweep
from sweep.tracking import client_for

pytestmark = pytest.mark.usefixtures("ray_runtime")

DEPLOY = [
    {"name": "sigma", "noise": {"name": "additive"}},  # the training noise over eval.scales: the curve reused
    {"name": "sigma", "noise": {"name": "multiplicative"}, "values": [0.0, 0.2]},
    {"name": "pcm_time", "values": [1.0, 86400.0, 31536000.0], "drift_compensation": False},
    {"name": "attack", "values": [0.0, 0.05], "starts": 1, "steps": 3},
]
SCALES = (0, 0.1, 0.2)  # the tiny base's eval.scales
KEYS = ["additive", "multiplicative", "pcm_nocomp", "attack"]


def test_deployment_matrix_in_mlflow_and_the_report(tmp_path: Path, make_sweep, mlflow_runs, tiny_base, capsys):
    from hardware import deploy_settings
    from sweep.cli import main
    from sweep.config import setting_metric

    tiny_base["eval"].update(deploy=DEPLOY, flatness={"batches": 1, "iterations": 5})
    section = {
        "grid": {"method.name": ["baseline", "noise_injection"], "seed": [0, 1]},
        "search": {"metric": "val_auc:pcm_nocomp"},
    }
    outcome = run_sweep(make_sweep(section, tiny_base), verbose=0)
    assert [r["status"] for r in outcome.rows] == ["finished"] * 4

    parent, runs = mlflow_runs()
    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    settings = deploy_settings(DEPLOY)
    assert [s.key for s in settings] == KEYS
    for run in runs:
        metrics, tags = run.data.metrics, run.data.tags
        for s in settings:
            acc = client.get_metric_history(run.info.run_id, f"curve/{s.key}/acc")
            x = client.get_metric_history(run.info.run_id, f"curve/{s.key}/x")
            assert [m.step for m in acc] == [m.step for m in x] == list(range(len(s.values)))
            assert [m.value for m in x] == pytest.approx(s.values)  # step = index on the setting's axis
            assert (tags[f"deploy.{s.key}.axis"], tags[f"deploy.{s.key}.unit"]) == (s.axis, s.unit)
            points = [metrics[setting_metric(s.key, v)] for v in s.values]
            assert [m.value for m in acc] == pytest.approx(points)
            assert 0 <= metrics[f"auc:{s.key}"] <= 1
        assert metrics["acc:pcm_nocomp:31536000"] == metrics[setting_metric("pcm_nocomp", 365 * 86400.0)]
        # the training-noise setting is the trial's own curve; zeta = 0 is the clean accuracy
        assert [metrics[f"acc:additive:{v:g}"] for v in SCALES] == [metrics[f"acc_at_{v:g}"] for v in SCALES]
        assert metrics["acc:attack:0"] == pytest.approx(metrics["test_acc"])
        assert metrics["acc:attack:0.05"] <= metrics["test_acc"]
        # selection names pcm_nocomp: its validation curve is there, the other settings' are not
        assert 0 <= metrics["val_auc:pcm_nocomp"] <= 1 and "val_auc:attack" not in metrics
        assert math.isfinite(metrics["flatness"]) and metrics["flatness_iterations"] >= 1
        assert "deploy.json" in {a.path for a in client.list_artifacts(run.info.run_id)}

    # flatness of noise injection vs the baseline: computed and logged per trial (no sign asserted)
    flat = {(r.data.tags["method"], r.data.params["seed"]): r.data.metrics["flatness"] for r in runs}
    assert set(flat) == {(m, s) for m in ("baseline", "noise_injection") for s in ("0", "1")}
    assert len(set(flat.values())) == 4  # four different trained networks, four measurements

    out = tmp_path / "report"
    code = main(["report", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--experiment", "test",
                 "--out", str(out), "--reference", "baseline", "--results", str(tmp_path / "results")])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "deployment matrix" in printed and "val_auc:pcm_nocomp" in printed
    for s in settings:
        assert f"{s.key}: test accuracy (%) vs {s.axis} ({s.unit[:20]}" in " ".join(printed.split())

    md = (out / "deploy.md").read_text()
    assert md in (out / "report.md").read_text()
    assert (tmp_path / "results" / "t_deploy.md").read_text() == md  # the README's copy, beside t.md
    assert (tmp_path / "results" / "t.md").is_file() and (tmp_path / "results" / "t_deploy_curves.png").is_file()
    header = next(line for line in md.splitlines() if line.startswith("| method"))
    assert header == "| method | " + " | ".join(f"{k} AUC (%)" for k in KEYS) + " | flatness λmax |"
    matrix = md.split("\n\n")[2].splitlines()  # title, explanation, the matrix, the columns, the tables
    assert matrix[0] == header and len(matrix) == 4
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in matrix[2:]}
    assert {"baseline", "noise_injection"} <= set(rows)
    with (out / "deploy.csv").open() as f:
        table = list(csv.DictReader(f))
    for key in KEYS:
        aucs = {m: [flat_run.data.metrics[f"auc:{key}"] for flat_run in runs if flat_run.data.tags["method"] == m]
                for m in ("baseline", "noise_injection")}  # fmt: skip
        means = {m: sum(v) / 2 for m, v in aucs.items()}
        for m, mean in means.items():
            row = next(r for r in table if (r["method"], r["setting"], r["metric"]) == (m, key, "auc"))
            assert float(row["mean"]) == pytest.approx(mean)
        best = max(means, key=means.__getitem__)
        column = KEYS.index(key) + 1
        assert rows[best].split(" | ")[column].startswith("**")  # the best mean per column is marked
        other = next(m for m in means if m != best)
        assert not rows[other].split(" | ")[column].startswith("**") or means[other] == means[best]
    assert (out / "deploy.png").read_bytes()[:4] == b"\x89PNG"
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {f"report/deploy.{ext}" for ext in ("md", "csv", "png")} <= logged
    assert parent.data.tags["sweep.metric"] == "val_auc:pcm_nocomp"
