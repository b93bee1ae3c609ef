"""A paper's claim, written in a sweep's `claim:` block: a list of comparisons (`method` against
`reference` on AUC or on the accuracy at one noise scale, expected `better` or `no detectable
difference`). `sweep report` judges it (sweep/report/verdicts.py): paired t-tests over seeds,
Holm-corrected over the claim's comparisons; a claim holds when every comparison came out as expected.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from sweep.config.errors import ConfigError, Strict


class Comparison(Strict):
    method: str
    """The method the paper proposes (a `method.name` of the sweep)."""
    reference: str
    """The method it is compared with."""
    metric: Literal["auc", "acc"] = "acc"
    """`acc`: test accuracy at `scale`; `auc`: area under the robustness curve over the evaluation scales."""
    scale: float | None = None
    """The noise scale of `acc` (one of eval.scales)."""
    expected: Literal["better", "no detectable difference"] = "better"
    """What the paper reports for `method` against `reference`."""

    @property
    def label(self) -> str:
        return "AUC" if self.metric == "auc" else f"acc@{self.scale:g}"


class Claim(Strict):
    paper: str
    """Authors, venue, year."""
    statement: str
    """What the paper claims, in its words or close to them."""
    paper_setting: str
    """The paper's own setting (models, data, noise)."""
    setting: str
    """This sweep's setting on digits, and how its scale range was chosen."""
    comparisons: list[Comparison] = Field(min_length=1)


def check_claim(claim: Claim, methods: list[str], scales: list[float]) -> None:
    """Every comparison names methods of the sweep and, for `acc`, one of its evaluation scales."""
    for i, c in enumerate(claim.comparisons):
        where = f"sweep.claim.comparisons.{i}"
        for field in ("method", "reference"):
            if getattr(c, field) not in methods:
                raise ConfigError(
                    f"{where}.{field}: {getattr(c, field)!r} is not a method of this sweep; "
                    f"allowed: {', '.join(methods)}"
                )
        if c.metric == "acc" and (c.scale is None or not any(math.isclose(c.scale, s) for s in scales)):
            raise ConfigError(f"{where}.scale: acc needs one of eval.scales {scales} (got {c.scale})")
