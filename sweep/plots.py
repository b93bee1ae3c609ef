"""Plots of robustness curves (mean with a 95% CI band) and of clean vs noisy accuracy with the
Pareto front. Matplotlib's Agg backend: files only, no display needed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware import RobustnessCurve

Series = tuple[Sequence[float], Sequence[float], Sequence[float]]
"""(scales, mean accuracies, CI half-widths; NaN where unknown)."""


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


DPI = 150
"""Print resolution of every PNG."""


def _save(fig: Any, path: str | Path, vector: bool = False, rect: tuple | None = None) -> Path:
    """Save the figure as `path` (PNG at `DPI`) and, with `vector`, an SVG copy beside it; close it."""
    fig.tight_layout(rect=rect)
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    if vector:
        fig.savefig(path.with_suffix(".svg"))
    _pyplot().close(fig)
    return path


def _label(ax: Any, xlabel: str, ylabel: str, title: str, legend: bool = True) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8)


def _band(ax: Any, scales: Sequence[float], mean: Sequence[float], ci: Sequence[float], **style: Any) -> Any:
    """A mean line and its CI band, the band clipped to accuracies in [0, 1]."""
    (line,) = ax.plot(scales, mean, marker="o", markersize=3, **style)
    low = [max(0.0, m - (0 if math.isnan(c) else c)) for m, c in zip(mean, ci, strict=True)]
    high = [min(1.0, m + (0 if math.isnan(c) else c)) for m, c in zip(mean, ci, strict=True)]
    ax.fill_between(scales, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def plot_bands(
    series: dict[str, Series], path: str | Path, title: str, ylabel: str = "test accuracy",
    xlabel: str = "noise scale (sigma)",
) -> Path:  # fmt: skip
    """One line per label with its CI band, accuracy against the noise scale (a few labels: one trial's)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, (scales, mean, ci) in series.items():
        _band(ax, scales, mean, ci, label=label)
    _label(ax, xlabel, ylabel, title)
    return _save(fig, path)


def plot_panels(
    series: dict[str, Series], path: str | Path, title: str, caption: str, reference: str | None = None,
    xlabel: str = "noise scale (sigma)", ylabel: str = "test accuracy",
) -> Path:  # fmt: skip
    """Small multiples: one panel per label (its line and CI band), the `reference` label's mean as a
    grey dashed line in every other panel, shared axes, accuracy in [0, 1]; `caption` (noise model,
    seeds, draws) under the panels. Writes the PNG and an SVG copy."""
    plt = _pyplot()
    n = len(series)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.6, 2.3 * rows + 1.0), sharex=True, sharey=True)
    flat = list(axes.flat) if n > 1 else [axes]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (ax, (label, (scales, mean, ci))) in enumerate(zip(flat, series.items(), strict=False)):
        if reference in series and label != reference:
            ref_scales, ref_mean, _ = series[reference]
            ax.plot(ref_scales, ref_mean, color="0.5", linestyle="--", linewidth=1, label=reference)
        _band(ax, scales, mean, ci, color=colours[k % len(colours)], label=label)
        ax.set_title(label, fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in flat[n:]:
        ax.set_visible(False)
    for ax in flat[(rows - 1) * cols :] if n > 1 else flat:
        ax.set_xlabel(xlabel, fontsize=8)
    for ax in flat[::cols]:
        ax.set_ylabel(ylabel, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.text(0.5, 0.005, caption, ha="center", va="bottom", fontsize=7, wrap=True)
    return _save(fig, path, vector=True, rect=(0, 0.06 if rows > 1 else 0.1, 1, 1))


def plot_curve(curves: dict[str, RobustnessCurve], path: str | Path, title: str) -> Path:
    """Robustness curves of single models: the band is the 95% CI over the Monte Carlo draws."""
    series = {label: (c.scales, c.means, [p.ci95 for p in c.points]) for label, c in curves.items()}
    return plot_bands(series, path, title)


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point beats in every coordinate (all maximized), sorted by
    the first coordinate."""

    def beats(a: Sequence[float], b: Sequence[float]) -> bool:
        return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))

    front = [i for i, p in enumerate(points) if not any(beats(q, p) for j, q in enumerate(points) if j != i)]
    return sorted(front, key=lambda i: points[i][0])


def plot_pareto(
    labels: Sequence[str], points: Sequence[tuple[float, float]], path: str | Path, xlabel: str, ylabel: str, title: str
) -> Path:
    """Scatter of the points coloured by label, the Pareto front as a line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for label in dict.fromkeys(labels):
        xs = [p[0] for p, lab in zip(points, labels, strict=True) if lab == label]
        ys = [p[1] for p, lab in zip(points, labels, strict=True) if lab == label]
        ax.scatter(xs, ys, s=22, alpha=0.8, label=label)
    front = pareto_front(points)
    if front:
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "k--", lw=1, label="Pareto front")
    _label(ax, xlabel, ylabel, title)
    return _save(fig, path, vector=True)


@dataclass
class Panel:
    """One small plot of a figure of several: its title, x label, log x axis, and its curves."""

    title: str
    xlabel: str
    log_x: bool
    series: dict[str, Series]


def plot_setting_panels(panels: Sequence[Panel], path: str | Path, title: str, ylabel: str = "test accuracy") -> Path:
    """Small multiples: one panel per entry (3 per row), one shared legend, the band the 95% CI."""
    plt = _pyplot()
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), dpi=110, squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for label, (xs, mean, ci) in panel.series.items():
            _band(ax, xs, mean, ci, label=label)
        if panel.log_x:
            ax.set_xscale("log")
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel(panel.xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path, rect=(0, 0.06 + 0.02 * (len(labels) > 5), 1, 0.97))
