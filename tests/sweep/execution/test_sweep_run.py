"""End to end on a real Ray runtime (2 CPUs) and a real SQLite MLflow store: grid, Optuna and
multi-objective sweeps, ASHA stopping trials, failing trials, and the report."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest
import torch

from sweep.execution import pareto_groups, run_sweep, summary_table
from sweep.tracking import client_for

pytestmark = pytest.mark.usefixtures("ray_runtime")
SCALES = [0.0, 0.1, 0.2]


def test_grid_sweep_logs_every_trial_its_curve_and_artifacts(tmp_path: Path, make_sweep, mlflow_runs, capsys):
    from hardware import area_under_curve
    from sweep.experiment import load_checkpoint
    from sweep.report import make_report
    from zoo import build_data

    section = {
        "grid": {"method.name": ["baseline", "consistency"], "seed": [0, 1]},
        "space": {"consistency": {"weight": {"grid": [0.5]}}},
    }
    cfg = make_sweep(section)
    outcome = run_sweep(cfg, verbose=0)
    assert [r["status"] for r in outcome.rows] == ["finished"] * 4 and not outcome.interrupted
    own = [r["metrics"]["trial_cpu_seconds"] for r in outcome.rows]
    assert all(s > 0 for s in own) and outcome.trial_cpu_seconds == pytest.approx(sum(own))
    assert outcome.cpus == 2  # the session's Ray (tests/sweep/conftest.py): the floor `sweep run` prints

    parent, runs = mlflow_runs()
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep.num_trials"] == "4"
    assert [r.data.tags["sweep.trial_key"] for r in runs] == ["0000-seed0", "0000-seed1", "0001-seed0", "0001-seed1"]
    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert "sweep.yaml" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the model-training view
    note = parent.data.tags["mlflow.note.content"]
    assert "curve/acc_vs_sigma_x1000" in note and "Group by" in note and "`consistency`" in note
    data = build_data(cfg.experiment.data)
    methods = ["baseline", "baseline", "consistency", "consistency"]
    for run, method, seed in zip(runs, methods, [0, 1, 0, 1], strict=True):
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert run.info.status == "FINISHED" and tags["sweep.status"] == "finished"
        assert tags["method"] == params["method.name"] == method and params["seed"] == str(seed)
        assert params["train.epochs"] == "2" and params["eval.seed"] == "1234" and tags["node_id"] and tags["hostname"]
        assert params.get("consistency.weight") == ("0.5" if method == "consistency" else None)
        assert "method.weight" not in params

        curve = client.get_metric_history(run.info.run_id, "curve/acc_vs_sigma_x1000")
        assert [m.step for m in curve] == [0, 100, 200]  # step = 1000 sigma: MLflow's chart reads sigma
        means = [m.value for m in curve]
        assert means == pytest.approx([metrics[f"acc_at_{s:g}"] for s in SCALES])
        assert metrics["auc"] == pytest.approx(area_under_curve(SCALES, means))
        assert metrics["test_acc"] == pytest.approx(means[0])  # scale 0 is the clean accuracy
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_noisy_acc")] == [1, 2]
        assert 0 <= metrics["val_auc"] <= 1

        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"curve.json", "curve.png", "model"} <= artifacts
        folder = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "dl" / run.info.run_id)))
        saved = json.loads((folder / "curve.json").read_text())
        assert saved["scales"] == SCALES and saved["seed"] == 1234  # common random numbers for every trial
        assert (folder / "curve.png").read_bytes()[:4] == b"\x89PNG"
        model, _ = load_checkpoint(folder / "model" / "checkpoint.pt")
        with torch.no_grad():
            x, y = data.test.tensors
            assert (model(x).argmax(1) == y).float().mean().item() == pytest.approx(metrics["test_acc"])

    report = make_report(f"sqlite:///{tmp_path / 'mlflow.db'}", "test", tmp_path / "report", reference="baseline")
    by_method = {s.method: s for s in report["summaries"]}
    assert set(by_method) == {"baseline", "consistency"} and by_method["consistency"].seeds == ["0", "1"]
    auc = {(r.data.tags["method"], r.data.params["seed"]): r.data.metrics["auc"] for r in runs}
    diffs = [auc["consistency", s] - auc["baseline", s] for s in ("0", "1")]
    assert by_method["consistency"].diff_auc[0] == pytest.approx(sum(diffs) / 2)
    assert by_method["baseline"].auc[0] == pytest.approx((auc["baseline", "0"] + auc["baseline", "1"]) / 2)
    with (tmp_path / "report" / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["baseline", "consistency"]
    assert float(rows[1]["diff_auc_mean"]) == pytest.approx(sum(diffs) / 2)
    assert "| consistency |" in (tmp_path / "report" / "report.md").read_text()
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    names = ("report.md", "report.csv", "curves.png", "curves.svg", "pareto.png", "pareto.svg")
    assert logged == {f"report/{n}" for n in names}
    assert report["incomplete"] == ""  # every trial ended, the parent FINISHED

    from sweep.cli import main

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bad = [
        (["--reference", "nosuch"], "--reference 'nosuch': not a method of sweep 't'; methods: baseline, consistency"),
        (["--scale", "-1"], "--scale -1: not an evaluation scale of sweep 't'; scales: [0.0, 0.1, 0.2]"),
        (["--out", str(tmp_path / "mlflow.db")], "is a file, not a folder"),
    ]
    for args, message in bad:
        capsys.readouterr()
        assert main(["report", "--tracking-uri", uri, "--experiment", "test", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_optuna_sweep_samples_its_domain_and_batched_reports_keep_every_epoch(
    tmp_path: Path, make_sweep, mlflow_runs, tiny_base
):
    section = {
        "search": {"algorithm": "optuna", "num_samples": 3},
        "space": {"train.lr": {"loguniform": [1e-3, 1e-2]}},
        "report_interval": 1000,  # one report per trial: epochs 1-3 travel with the final one
    }
    base = {**tiny_base, "train": {**tiny_base["train"], "epochs": 4}}
    outcome = run_sweep(make_sweep(section, base), verbose=0)
    assert [r["status"] for r in outcome.rows] == ["finished"] * 3
    _, runs = mlflow_runs()
    lrs = [float(r.data.params["train.lr"]) for r in runs]
    assert len(set(lrs)) == 3 and all(1e-3 <= lr <= 1e-2 for lr in lrs)
    assert [r.data.tags["sweep.trial_key"] for r in runs] == ["0000", "0001", "0002"]
    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for run in runs:
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2, 3, 4]
    results = [p / "result.json" for p in (tmp_path / "runs" / "t").iterdir() if p.is_dir()]
    assert [len(r.read_text().splitlines()) for r in results] == [1, 1, 1]


def test_multi_objective_sweep_reports_a_pareto_set(make_sweep, mlflow_runs):
    metrics = ["val_acc", "val_noisy_acc"]
    section = {
        "search": {"algorithm": "optuna", "num_samples": 4, "metric": metrics},
        "space": {"train.lr": {"loguniform": [1e-4, 1e-2]}},
    }
    outcome = run_sweep(make_sweep(section), verbose=0)
    assert [r["status"] for r in outcome.rows] == ["finished"] * 4
    parent, runs = mlflow_runs()
    assert parent.data.tags["sweep.metric"] == "val_acc,val_noisy_acc" and len(runs) == 4
    front = pareto_groups(outcome.rows, metrics)
    assert front
    points = {r["key"]: tuple(r["metrics"][m] for m in metrics) for r in outcome.rows}
    for key, means in front:
        mine = tuple(means[m] for m in metrics)
        assert mine == pytest.approx(points[key])
        assert not any(
            all(o >= v for o, v in zip(other, mine, strict=True)) and other != mine for other in points.values()
        )


def test_asha_stops_the_trials_that_fall_behind(make_sweep, mlflow_runs, tiny_base):
    section = {
        "grid": {"train.lr": [0.01, 1e-7, 2e-7, 3e-7]},  # the first learns; the others cannot
        "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
        "resources": {"max_concurrent": 1},  # in order: the good trial sets the bar at every rung
    }
    base = {**tiny_base, "train": {**tiny_base["train"], "epochs": 4}}
    outcome = run_sweep(make_sweep(section, base), verbose=0)
    statuses = [r["status"] for r in outcome.rows]
    assert statuses[0] == "finished" and all(s in ("stopped@1", "stopped@2") for s in statuses[1:]), statuses
    _, runs = mlflow_runs()
    assert [r.data.tags["sweep.status"] for r in runs] == ["finished"] + ["stopped_early"] * 3
    assert "auc" in runs[0].data.metrics and not any("auc" in r.data.metrics for r in runs[1:])
    for run, status in zip(runs[1:], statuses[1:], strict=True):
        assert run.info.status == "FINISHED" and run.data.metrics["epoch"] == int(status.split("@")[1])
        assert run.data.tags["sweep.stopped_at_epoch"] == status.split("@")[1]


def test_a_raising_trial_and_a_nan_loss_fail_alone_with_their_errors_recorded(
    tmp_path: Path, make_sweep, mlflow_runs, tiny_base
):
    from rich.console import Console

    section = {
        "grid": {"data.name": ["digits", "cifar10"], "train.lr": [0.005, 1e30]},
        "failure": {"retries": 1},
    }
    base = {**tiny_base, "data": {"name": "digits", "root": str(tmp_path / "no-data")}}
    cfg = make_sweep(section, base)
    outcome = run_sweep(cfg, verbose=0)
    assert [r["status"] for r in outcome.rows] == ["finished", "failed", "failed", "failed"]
    assert outcome.failed == 3 and not outcome.interrupted
    assert "loss became" in outcome.rows[1]["error"] and "FileNotFoundError" in outcome.rows[2]["error"]

    _, runs = mlflow_runs()
    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert runs[0].info.status == "FINISHED"
    errors = ["FloatingPointError: loss became", "FileNotFoundError: cifar10", "FileNotFoundError: cifar10"]
    for run, error in zip(runs[1:], errors, strict=True):
        assert run.info.status == "FAILED" and run.data.tags["sweep.status"] == "failed"
        assert error in run.data.tags["sweep.error"] and run.data.tags["sweep.retries"] == "1"
        text = Path(client.download_artifacts(run.info.run_id, "error.txt", str(tmp_path / run.info.run_id)))
        text = text.read_text()
        assert 'File "' in text and error in text and "\x1b[" not in text  # the stack, without colours
    console = Console(record=True, width=200)
    console.print(summary_table(outcome, 200))
    text = console.export_text()
    assert len(re.findall(r"│ failed +│", text)) == 3
    for row in outcome.rows[1:]:  # every failed trial's error, once, under the table
        assert text.count(f"{row['key']}: {row['error'][:40]}") == 1
    assert not math.isnan(outcome.rows[0]["metrics"]["auc"])
