"""The README's results cannot go stale: its results blocks are exactly the files `sweep report
--results docs/results` and the benches' `--markdown` wrote (python -m sweep.report.readme README.md
copies them)."""

from __future__ import annotations

from pathlib import Path

from sweep.report.readme import readme_blocks

ROOT = Path(__file__).resolve().parents[1]


def test_readme_results_blocks_are_the_files_sweep_report_wrote():
    blocks = readme_blocks((ROOT / "README.md").read_text())
    assert [path for path, _ in blocks] == [
        "docs/results/digits.md",
        "docs/results/claims.md",
        "docs/results/digits_deploy.md",  # the deployment matrix (issue #10)
        "bench/results/sweep_efficiency.md",  # python bench/sweep_efficiency.py --markdown
    ]
    for path, text in blocks:
        fix = "run python -m sweep.report.readme README.md"
        assert text == (ROOT / path).read_text(), f"README block {path} differs: {fix}"


def test_results_tables_are_not_typed_by_hand_elsewhere_in_the_readme():
    """Outside the generated blocks the README holds no results table (a header with `± ` cells)."""
    text = (ROOT / "README.md").read_text()
    for _, body in readme_blocks(text):
        text = text.replace(body, "")
    assert not [line for line in text.splitlines() if line.startswith("|") and " ± " in line]
