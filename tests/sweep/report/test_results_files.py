"""The results files behind the README: the claims table keeps one row per sweep, README blocks sync."""

from __future__ import annotations

from pathlib import Path

from sweep.report.readme import readme_blocks, sync_readme
from sweep.report.results import CLAIMS_HEADER, table_cells, update_claims


def test_claims_table_replaces_a_sweeps_row_and_sorts_by_sweep(tmp_path: Path):
    path = tmp_path / "claims.md"
    path.write_text("_Not generated yet._\n")
    update_claims(path, ["nft2023", "Qin", "NFT wins", "rram", "a | b", "not shown"])
    update_claims(path, ["hou2024", "Hou", "cons wins", "additive", "x", "holds"])
    update_claims(path, ["nft2023", "Qin", "NFT wins", "rram", "c", "does not hold"])
    lines = path.read_text().splitlines()
    assert table_cells(lines[0]) == CLAIMS_HEADER and len(lines) == 4
    assert [table_cells(line)[0] for line in lines[2:]] == ["hou2024", "nft2023"]
    assert table_cells(lines[3])[-2:] == ["c", "does not hold"]
    update_claims(path, ["hou2024", "Hou", "cons wins", "additive", "a | b", "holds"])  # escaped pipe survives
    assert "a \\| b" in path.read_text() and len(path.read_text().splitlines()) == 4


def test_sync_fills_every_block_and_leaves_the_rest(tmp_path: Path):
    (tmp_path / "a.md").write_text("| x |\n|---|\n| 1 |\n")
    (tmp_path / "b.md").write_text("text\n")
    readme = tmp_path / "README.md"
    blocks = "<!-- results: a.md -->\nstale\n<!-- /results -->\nmiddle\n<!-- results: b.md -->\n<!-- /results -->\n"
    readme.write_text("top\n" + blocks)
    assert sync_readme(readme, tmp_path) == ["a.md", "b.md"]
    assert readme_blocks(readme.read_text()) == [("a.md", "| x |\n|---|\n| 1 |\n"), ("b.md", "text\n")]
    assert readme.read_text().startswith("top\n") and "\nmiddle\n" in readme.read_text()
