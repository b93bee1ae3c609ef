"""Tables in a terminal: every number, name and knob whole at the console's width. A table that does not
fit gets `mean ± CI` on two lines, then leaves columns out (named under it, with the file that has all),
and no column is narrower than its longest word, so rich wraps at spaces and never cuts a cell."""

from __future__ import annotations

from typing import Any


def table_width(header: list[str], rows: list[list[str]]) -> int:
    """Characters the narrowest uncut table takes: columns, rich's padding and borders."""
    from sweep.report import column_width

    return sum(column_width(header, rows, i) + 3 for i in range(len(header))) + 1


def shape(rows: list[list[str]], words: tuple[int, ...] = ()) -> list[list[str]]:
    """The cells as the terminal measures them: rich markup such as `[bold]` removed, and in the `words`
    columns (text, which wraps at spaces) each word on its own line."""
    from rich.text import Text

    def seen(cell: str, i: int) -> str:
        text = Text.from_markup(cell).plain
        return "\n".join(text.split()) if i in words else text

    return [[seen(cell, i) for i, cell in enumerate(row)] for row in rows]


def print_table(
    console: Any,
    title: str,
    header: list[str],
    rows: list[list[str]],
    *,
    notes: list[str] | None = None,
    left: tuple[int, ...] = (0,),
    droppable: list[int] | None = None,
    full_in: str = "report.md",
) -> None:
    """Print `rows` under `header` at `console.width`: `left` columns left-aligned (the rest right),
    `droppable` (default: none) the columns that may be left out, evenly spaced, when the table is too
    wide; `notes` go under the table."""
    from rich.table import Table

    from sweep.report import column_width, columns_that_fit

    notes = list(notes or [])
    width = console.width
    if table_width(header, shape(rows, left)) > width:
        rows = two_lines(rows)
    measured = shape(rows, left)  # text columns word by word: the narrowest uncut layout
    shown = columns_that_fit(header, measured, width, droppable or [])
    if len(shown) < len(header):
        left_out = [header[i] for i in range(len(header)) if i not in shown]
        named = ", ".join(left_out) if len(left_out) <= 3 else f"{len(left_out)} of {len(header)} columns"
        notes.append(f"left out to fit the terminal: {named} (every column is in {full_in})")
    table = Table(title=title, caption="\n".join(notes) or None, caption_justify="left")
    seen = shape(rows)
    natural = sum(
        max(len(line) for cell in [header[i], *(r[i] for r in seen)] for line in cell.split("\n")) for i in shown
    )
    fits_natural = natural + 3 * len(shown) + 1 <= width
    for i in shown:  # too wide on one line: each column exactly as wide as its longest word or number
        narrowest = None if fits_natural else column_width(header, measured, i)
        table.add_column(header[i], justify="left" if i in left else "right", width=narrowest)
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    console.print(table)


def two_lines(rows: list[list[str]]) -> list[list[str]]:
    """`mean ± CI` cells as `mean` over `± CI`."""
    return [[cell.replace(" ± ", "\n± ") for cell in row] for row in rows]
