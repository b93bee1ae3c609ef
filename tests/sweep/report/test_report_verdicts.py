"""`sweep report` on a real sweep (Ray runtime, SQLite MLflow): verdicts recomputed from the trials'
MLflow metrics, the claim and its verdict, configurations per method, noise.sigma as a knob, the
results files and the README blocks made from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.report.readme import readme_blocks, sync_readme
from sweep.report.statistics import paired_test

pytestmark = pytest.mark.usefixtures("ray_runtime")

CLAIM = {
    "paper": "A. Author, Some Venue (2024)",
    "statement": "noise injection beats plain training under noise.",
    "paper_setting": "additive noise 0.2",
    "setting": "tiny LeNet on digits, 2 epochs",
    "comparisons": [
        {"method": "noise_injection", "reference": "baseline", "metric": "acc", "scale": 0.2},
        {"method": "noise_injection", "reference": "baseline", "metric": "auc"},
    ],
}


def test_report_gives_verdicts_and_the_claim_from_the_trials(
    tmp_path: Path, make_sweep, mlflow_runs, tiny_base, capsys
):
    from sweep.cli import main

    section = {
        "grid": {"method.name": ["baseline", "noise_injection"], "seed": [0, 1, 2]},
        "space": {"noise_injection": {"noise.sigma": {"grid": [0.1, 0.2]}}},
        "claim": CLAIM,
    }
    cfg = make_sweep(section, {**tiny_base, "noise": {"name": "additive", "sigma": 0.2}})
    from sweep.execution import run_sweep

    outcome = run_sweep(cfg, verbose=0)
    assert [r["status"] for r in outcome.rows] == ["finished"] * 9

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = tmp_path / "docs" / "results"
    argv = ["report", "--tracking-uri", uri, "--experiment", "test", "--reference", "baseline"]
    assert main([*argv, "--out", str(tmp_path / "report"), "--results", str(results)]) == 0
    printed = capsys.readouterr().out
    assert "claim (A. Author, Some Venue (2024)): noise injection beats plain training" in printed
    assert "verdicts vs baseline" in printed

    # recompute the verdict from MLflow: the chosen sigma (best mean val_auc), paired by seed with baseline
    _, runs = mlflow_runs()
    by = {}
    for r in runs:
        by.setdefault((r.data.tags["method"], r.data.params["noise.sigma"]), {})[r.data.params["seed"]] = r.data.metrics
    sigmas = [k[1] for k in by if k[0] == "noise_injection"]
    assert sorted(sigmas) == ["0.1", "0.2"]
    best = max(sigmas, key=lambda s: sum(m["val_auc"] for m in by["noise_injection", s].values()))
    ni, bl = by["noise_injection", best], by["baseline", "0.2"]
    expected = paired_test([ni[s]["acc_at_0.2"] - bl[s]["acc_at_0.2"] for s in ("0", "1", "2")])

    body = (results / f"{cfg.name}.md").read_text()
    assert (tmp_path / "report" / "report.md").read_text() == f"# Robustness comparison: {cfg.name}\n\n{body}"
    tables = [block.splitlines() for block in body.split("\n\n") if block.startswith("| ")]
    assert len(tables) == 3  # the comparison, the verdicts, the claim
    table = {line.split(" | ")[0].strip("| "): line for line in tables[0][2:]}
    assert f"noise.sigma={best}" in table["noise_injection"] and " | 2 | 3 | " in table["noise_injection"]
    assert " | 1 | 3 | " in table["baseline"]  # one configuration, three seeds
    row = next(line for line in tables[1] if line.startswith("| noise_injection | acc@0.2 |"))
    assert f"| {100 * expected.mean:+.1f} ± {100 * expected.ci95:.1f} |" in row
    verdict = "better" if expected.p <= 0.05 and expected.mean > 0 else "worse" if expected.p <= 0.05 else None
    assert (verdict or "no detectable difference") in row  # Holm over one method: p unchanged
    assert "Verdict on digits: **" in body

    claims = (results / "claims.md").read_text().splitlines()
    assert claims[0].startswith("| sweep | paper | claim |") and len(claims) == 3
    assert claims[2].startswith(f"| {cfg.name} | A. Author, Some Venue (2024) |")

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n<!-- results: docs/results/{cfg.name}.md -->\nold\n<!-- /results -->\nend\n")
    assert sync_readme(readme, tmp_path) == [f"docs/results/{cfg.name}.md"]
    assert readme_blocks(readme.read_text()) == [(f"docs/results/{cfg.name}.md", body)]
    assert readme.read_text().endswith("<!-- /results -->\nend\n") and sync_readme(readme, tmp_path) == []
