"""Data sets: one loader per module, registered in `DATASETS`, built with `load_dataset`."""

from __future__ import annotations

import inspect
from typing import Any

from methods.datasets import digits, synthetic, torchvision_sets  # noqa: F401  (registers the members)
from methods.datasets.base import DATASETS, DataSplits

COMMON_ARGS = ("root", "download", "augment", "val_fraction", "seed")
"""The arguments every loader takes first, in this order; its own options follow."""


def names() -> list[str]:
    return DATASETS.names()


def options(name: str) -> dict[str, Any]:
    """The data set's own options and their defaults."""
    params = list(inspect.signature(DATASETS.get(name)).parameters.values())[len(COMMON_ARGS) :]
    return {p.name: p.default for p in params}


def load_dataset(
    name: str,
    *,
    root: str = "data",
    download: bool = False,
    augment: bool = True,
    val_fraction: float = 0.1,
    seed: int = 0,
    **opts: Any,
) -> DataSplits:
    """Train / validation / test splits of data set `name`; `seed` fixes which items go where.

    `opts` are the data set's own options (see `options(name)`); unknown ones are errors.
    """
    loader = DATASETS.get(name)
    allowed = options(name)
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise ValueError(
            f"data set {name!r} has no option {unknown[0]!r}; allowed: {', '.join(allowed) or '(none)'}"
        )
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    return loader(root, download, augment, val_fraction, seed, **opts)


__all__ = ["DATASETS", "DataSplits", "load_dataset", "names", "options"]
