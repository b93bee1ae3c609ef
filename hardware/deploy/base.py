"""Deployment settings: how a trained network is judged on one chip, with that setting's own x axis.

A setting is a pydantic plug-in (`hardware.registry.Plugin`): its fields are plain data, so it goes
into a YAML config and MLflow as a dict (`to_dict`, `deploy_setting`). `evaluate` turns a prepared
model and a data split into a `RobustnessCurve` whose x values (`CurvePoint.scale`) are the setting's
axis values, with common random numbers: draw k comes from `draw_generator(seed, k)` at every axis
value and for every model, so curves are paired across trials.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from pydantic import Field, ValidationError, field_validator
from torch import Tensor, nn

from hardware.curve import CurvePoint, RobustnessCurve
from hardware.engine import Prepared, prepare
from hardware.noise.base import NoiseModel, noise_model, one_line
from hardware.presets import preset
from hardware.registry import Plugin, PluginRegistry
from hardware.statistics import area_under_curve

Batches = list[tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class DrawPlan:
    """How many Monte Carlo draws, from which seed: the evaluation config's `samples`, `seed`,
    `target_ci` and `max_samples` (the arguments of `robustness_curve`)."""

    samples: int
    seed: int
    target_ci: float | None = None
    max_samples: int | None = None

    def curve_args(self) -> dict[str, Any]:
        return asdict(self)


LABEL_PATTERN = r"^[A-Za-z0-9_.-]+$"
"""Labels become MLflow metric-name parts and file names: letters, digits, `_`, `.`, `-`."""


class DeploySetting(Plugin):
    """Base class: subclasses declare ``name: Literal[...]``, `axis`, `unit`, `values` and `points`."""

    axis: ClassVar[str]
    """Short name of the x axis (e.g. ``sigma``, ``t``, ``zeta``)."""
    log_axis: ClassVar[bool] = False
    """The axis is read on a log scale (plots, `auc`)."""

    label: str | None = Field(None, pattern=LABEL_PATTERN)
    """The setting's column in the deployment matrix; None: `default_label`."""
    values: list[float]
    """The axis values, strictly increasing."""
    samples: int | None = Field(None, ge=1)
    """Monte Carlo draws per random axis value; None: the evaluation's `samples` (the attack: `starts`)."""

    @field_validator("values")
    @classmethod
    def _increasing(cls, values: list[float]) -> list[float]:
        if not values or any(v < 0 or not math.isfinite(v) for v in values):
            raise ValueError(f"must be a non-empty list of finite numbers >= 0 (got {values})")
        if any(b <= a for a, b in zip(values, values[1:], strict=False)):
            raise ValueError(f"must be strictly increasing (got {values})")
        if cls.log_axis and values[0] <= 0:
            raise ValueError(f"must be > 0 on this log axis (got {values})")
        return values

    @property
    @abstractmethod
    def unit(self) -> str:
        """What one unit on the axis means, for axis labels and table headers."""

    @property
    @abstractmethod
    def default_label(self) -> str:
        """The label when none is given (unique among the default settings of each member)."""

    @property
    def key(self) -> str:
        """The setting's name in the deployment matrix, MLflow and report files."""
        return self.label or self.default_label

    @abstractmethod
    def points(self, prepared: Prepared, plan: DrawPlan) -> list[CurvePoint]:
        """One point per axis value (`CurvePoint.scale` = the value) of the prepared model and data."""

    def evaluate(
        self,
        model: nn.Module,
        loader: Iterable[tuple[Tensor, Tensor]],
        *,
        samples: int,
        seed: int,
        target_ci: float | None = None,
        max_samples: int | None = None,
    ) -> RobustnessCurve:
        """Accuracy of `model` on `loader` at each axis value; draw k from `draw_generator(seed, k)`
        (`samples` draws per random point, or until the 95% CI half-width is `target_ci`, at most
        `max_samples`, where the setting draws at random; the setting's own `samples` replaces the
        argument when set). The curve's `noise` is `describe()`. The model's weights and train/eval
        mode are restored afterwards. Several settings on one model: `evaluate_prepared` on one
        `hardware.prepare(model, loader)` pays the set-up once."""
        with prepare(model, loader) as prepared:
            return self.evaluate_prepared(
                prepared, samples=samples, seed=seed, target_ci=target_ci, max_samples=max_samples
            )

    def evaluate_prepared(
        self,
        prepared: Prepared,
        *,
        samples: int,
        seed: int,
        target_ci: float | None = None,
        max_samples: int | None = None,
    ) -> RobustnessCurve:
        """`evaluate` on a model and data already set up by `hardware.prepare`."""
        plan = DrawPlan(self.samples or samples, seed, target_ci, max_samples)
        return RobustnessCurve(self.describe(), seed, self.points(prepared, plan))

    def draws(self, samples: int) -> int:
        """Draws per random axis value when the evaluation asks for `samples` (before `target_ci`)."""
        return self.samples or samples

    def auc(self, curve: RobustnessCurve) -> float:
        """The mean accuracy over the axis range: trapezoid area over the axis (over log10 of it on a
        log axis) divided by its length. On a linear axis it equals `curve.auc`."""
        xs = [math.log10(x) for x in curve.scales] if self.log_axis else curve.scales
        return area_under_curve(xs, curve.means)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML data; `deploy_setting(s.to_dict()) == s`."""
        return self.model_dump(mode="json")

    def describe(self) -> dict[str, Any]:
        """`to_dict` plus the key, axis and unit (stored as a curve's `noise` and logged as params)."""
        return {"key": self.key, "axis": self.axis, "unit": self.unit, **self.to_dict()}

    def axis_label(self) -> str:
        """E.g. ``t (s after programming)``: the x label of plots and tables."""
        return f"{self.axis} ({self.unit})"

    def format_value(self, x: float) -> str:
        """An axis value for tables and tick labels."""
        return f"{x:.4g}"


def format_setting_table(setting: DeploySetting, curve: RobustnessCurve) -> str:
    """The curve as a plain-text table (accuracies in %) headed by the setting's key, axis and unit,
    with the setting's AUC below it."""
    width = max(8, *(len(setting.format_value(x)) for x in curve.scales))
    lines = [
        f"{setting.key}: {setting.axis_label()}",
        f"{setting.axis:>{width}}  {'draws':>5}  {'mean %':>7}  {'CI95 +-':>7}  {'min %':>7}",
    ]
    for p in curve.points:
        lines.append(
            f"{setting.format_value(p.scale):>{width}}  {p.n_draws:>5d}  {100 * p.mean:>7.2f}  "
            f"{100 * p.ci95:>7.2f}  {100 * p.min:>7.2f}"
        )
    scale = ", log axis" if setting.log_axis else ""
    lines.append(
        f"seed {curve.seed}: AUC (mean accuracy over the {setting.axis} range{scale}) {100 * setting.auc(curve):.2f}%"
    )
    return "\n".join(lines)


DEPLOY_SETTINGS: PluginRegistry[DeploySetting] = PluginRegistry("deployment setting")


def deploy_setting(data: dict[str, Any] | DeploySetting) -> DeploySetting:
    """A setting from its dict form (``{"name": ..., **fields}``); bad input raises one ValueError line
    naming the field and the allowed values."""
    if isinstance(data, DeploySetting):
        return data
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ValueError(
            f"deployment setting: name: missing (got {data!r}); allowed: {', '.join(DEPLOY_SETTINGS.names())}"
        )
    cls = DEPLOY_SETTINGS.get(data["name"])
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise one_line(err, f"deployment setting {data['name']!r}") from None


def deploy_settings(items: Sequence[dict[str, Any] | DeploySetting]) -> list[DeploySetting]:
    """Several settings; their keys must be unique (they name the matrix's columns)."""
    settings = [deploy_setting(item) for item in items]
    keys = [s.key for s in settings]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise ValueError(f"deployment settings: label: {key!r} is used twice; give one of them another label")
    return settings


def setting_names() -> list[str]:
    return DEPLOY_SETTINGS.names()


# ------------------------------------------------------------------------------ noise specs


def build_noise(spec: dict[str, Any]) -> NoiseModel:
    """A noise model from ``{"name": NAME, **fields}`` or ``{"preset": NAME, **overrides}`` (the config's
    `noise:` forms); errors are one-line ValueErrors."""
    params = dict(spec)
    if "preset" in params:
        return preset(params.pop("preset"), **params)
    if "name" not in params:
        raise ValueError(f"noise: needs `name` (a noise model) or `preset` (got {spec!r})")
    return noise_model(params.pop("name"), **params)


def noise_key(spec: dict[str, Any]) -> str:
    """The preset's or the noise model's name."""
    return str(spec.get("preset", spec.get("name")))
