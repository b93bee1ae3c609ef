"""Result files that cannot go stale: `sweep report --results DIR` writes the tables the README shows
(DIR/<sweep>.md, DIR/<sweep>_curves.png; a sweep with a claim also updates its row of DIR/claims.md);
`sweep/report/readme.py` copies them into the README.
"""

from __future__ import annotations

import re
from pathlib import Path

from sweep.report.verdicts import markdown_table

CLAIMS_FILE = "claims.md"
CLAIMS_HEADER = ["sweep", "paper", "claim", "setting on digits", "what digits shows", "verdict"]


def table_cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def update_claims(path: Path, row: list[str]) -> None:
    """Put `row` (first cell: the sweep's name) into the claims table at `path`, replacing that sweep's
    earlier row; rows stay sorted by sweep name."""
    rows = {}
    if path.is_file():
        for line in path.read_text().splitlines()[2:]:
            if line.startswith("|"):
                cells = table_cells(line)
                rows[cells[0]] = cells
    rows[row[0]] = [c.replace("|", "\\|") for c in row]
    lines = ["| " + " | ".join(CLAIMS_HEADER) + " |", "|" + "---|" * len(CLAIMS_HEADER)]
    lines += ["| " + " | ".join(rows[k]) + " |" for k in sorted(rows)]
    path.write_text("\n".join(lines) + "\n")


def compose(sections: list[tuple[str, list[str], list[list[str]]]]) -> str:
    """Markdown: each section's paragraph, then its table."""
    lines: list[str] = []
    for text, header, rows in sections:
        lines += [*([""] if lines else []), text, "", *markdown_table(header, rows)]
    return "\n".join(lines) + "\n"


def write_results(
    folder: Path, name: str, body: str, claim_row: list[str] | None, curves: Path | None = None
) -> dict[str, Path]:
    """DIR/<name>.md (the report's tables), DIR/<name>_curves.png (its robustness curves) and, for a sweep
    with a claim, its row of DIR/claims.md."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    files = {"results": folder / f"{name}.md"}
    files["results"].write_text(body)
    if curves is not None:
        files["results_curves"] = folder / f"{name}_curves.png"
        shutil.copyfile(curves, files["results_curves"])
    if claim_row is not None:
        files["claims"] = folder / CLAIMS_FILE
        update_claims(files["claims"], claim_row)
    return files
