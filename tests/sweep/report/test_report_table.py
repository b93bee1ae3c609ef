"""The terminal table of `sweep report`: which columns fit a terminal of a given width."""

from __future__ import annotations

from sweep.report import columns_that_fit

SCALES = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]
HEADER = ["method", "hyperparameters", "seeds", *(f"acc@{s:g}" for s in SCALES), "AUC", "ΔAUC vs noise_injection"]
ROWS = [
    ["noise_injection", "—", "3", *["0.936 ± 0.019"] * len(SCALES), "0.851 ± 0.022", "—"],
    ["consistency", "weight=0.3", "3", *["0.938 ± 0.025"] * len(SCALES), "0.863 ± 0.036", "+0.012 ± 0.016"],
]


def shown_scales(width: int) -> list[str]:
    return [HEADER[i] for i in columns_that_fit(HEADER, ROWS, width) if HEADER[i].startswith("acc@")]


def test_a_wide_terminal_shows_every_column() -> None:
    assert columns_that_fit(HEADER, ROWS, 300) == list(range(len(HEADER)))


def test_a_narrow_terminal_keeps_the_other_columns_and_evenly_spaced_scales() -> None:
    kept = columns_that_fit(HEADER, ROWS, 150)
    assert {"method", "hyperparameters", "seeds", "AUC", "ΔAUC vs noise_injection"} <= {HEADER[i] for i in kept}
    scales = shown_scales(150)
    assert scales[0] == "acc@0" and scales[-1] == "acc@0.4" and 2 <= len(scales) < len(SCALES)
    assert scales == [f"acc@{SCALES[round(k * 8 / (len(scales) - 1))]:g}" for k in range(len(scales))]


def test_a_very_narrow_terminal_keeps_the_middle_scale() -> None:
    assert shown_scales(100) == ["acc@0.2"]
