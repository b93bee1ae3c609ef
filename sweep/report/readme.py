"""The README embeds the files `sweep report --results DIR` (and benches with `--markdown`) wrote
verbatim between markers

    <!-- results: docs/results/digits.md -->
    ...the file's text...
    <!-- /results -->

`python -m sweep.report.readme README.md` copies the files into the README's blocks; a test checks they agree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

BLOCK = re.compile(r"<!-- results: (?P<path>\S+) -->\n(?P<body>.*?)<!-- /results -->", re.S)


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """(file path, embedded text) of each results block of a README."""
    return [(m["path"], m["body"]) for m in BLOCK.finditer(text)]


def sync_readme(readme: Path, root: Path) -> list[str]:
    """Replace every block's text with its file's; returns the paths whose text changed."""
    text = readme.read_text()
    changed = []

    def fill(match: re.Match[str]) -> str:
        body = (root / match["path"]).read_text()
        if body != match["body"]:
            changed.append(match["path"])
        return f"<!-- results: {match['path']} -->\n{body}<!-- /results -->"

    readme.write_text(BLOCK.sub(fill, text))
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    readme = Path(args[0] if args else "README.md")
    changed = sync_readme(readme, readme.parent)
    print(f"{readme}: " + (f"updated {', '.join(changed)}" if changed else "every results block is current"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
