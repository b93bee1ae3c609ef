"""Names in the MLflow store and in a trial's reports and checkpoints, shared by the trials that write
them, the tracker that logs them and the report that reads them."""

from __future__ import annotations

import json
import math
from typing import Any

CURVE_JSON, CURVE_PNG = "curve.json", "curve.png"
"""A finished trial's robustness curve (artifacts beside the model's checkpoint)."""
DEPLOY, DEPLOY_JSON = "deploy", "deploy.json"
"""In the final report / as an artifact: key -> {setting, auc, curve} of every deployment setting (test)."""
HISTORY = "history"
"""In a report: the epochs since the previous report, as JSON."""
EPOCH_KEYS = ("epoch", "val_acc", "val_noisy_acc", "epoch_time", "lr")  # plus train_*
FINAL_KEYS = ("test_acc", "auc", "val_auc")  # plus acc_at_*, *_seconds and the method's summary
SETTING_PREFIXES = ("auc:", "acc:", "val_auc:", "val_acc:", "flatness")
"""Final metrics of the deployment settings (`sweep.config.setting_metric`) and of flatness."""
PLACE_TAGS = ("node_id", "hostname", "device")


EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
"""The experiment tag MLflow 3.x's UI reads to open an experiment in its model-training view (runs
table, charts) rather than its GenAI view (traces, evaluations)."""


def curve_factor(scales: list[float], least: int = 1000) -> int:
    """Steps per unit of the curve's axis: 1000 (step 200 = sigma 0.2), or the next power of ten
    that gives every scale its own whole step."""
    factor = least
    while len({round(s * factor) for s in scales}) < len(scales) or any(
        abs(s * factor - round(s * factor)) > 1e-6 * factor for s in scales
    ):
        factor *= 10
    return factor


def curve_metric(quantity: str, factor: int, axis: str = "sigma") -> str:
    """`curve/acc_vs_sigma_x1000`: a robustness curve in MLflow, logged at step = round(factor * scale),
    so MLflow's chart of it (x axis: step) reads the axis directly; the name says axis and factor. A
    deployment setting with its own axis and unit names it here, e.g. `axis="t_hours"`, factor 1."""
    return f"curve/{quantity}_vs_{axis}" + (f"_x{factor}" if factor != 1 else "")


def scale_label(scale: float) -> str:
    """`acc_at_0.05`: MLflow metric names cannot hold '@'."""
    return f"acc_at_{scale:g}"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"train": {"lr": 0.1}} -> {"train.lr": "0.1"}; lists and nulls as JSON."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value)
    return flat


def experiment_params(experiment: dict[str, Any]) -> dict[str, str]:
    """An experiment config (as JSON) flattened into MLflow params under the names the sweep uses: a
    method's knobs as `consistency.weight` (not `method.weight`), so one knob has one name in the trial
    config, MLflow, the CSV and the report. Values are JSON (`0.3`, `[4, 8]`, `null`), read back by
    `param_value`."""
    method = dict(experiment.get("method", {}))
    name = method.pop("name", "")
    rest = {k: v for k, v in experiment.items() if k != "method"}
    return {"method.name": name, **flatten(method, f"{name}."), **flatten(rest)}


def param_value(text: str) -> Any:
    """A param as logged by `experiment_params`: numbers, booleans and null as such, other text as is."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool, type(None))) else text


def number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def error_line(text: str) -> str:
    """The exception line of a traceback (`FloatingPointError: loss became nan ...`), at most 500 characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if ("Error" in line or "Exception" in line) and ":" in line:
            return line[:500]
    return (lines[-1] if lines else "unknown error")[:500]


def parent_description(name: str, space: Any, experiment: str) -> str:
    """The parent run's description in the MLflow UI (Markdown): what the sweep is and how to compare."""
    scales = space.base["eval"]["scales"]
    metric = curve_metric("acc", curve_factor(scales))
    sigma = space.base["noise"].get("sigma")
    noisy = scale_label(sigma if sigma in scales and sigma else scales[len(scales) // 2])
    return (
        f"Sweep `{name}`: {space.num_trials} trials of {', '.join(f'`{m}`' for m in space.methods())}, "
        f"one child run per trial (expand this run in the runs table).\n\n"
        f"**Compare the methods**: in the runs table, *Group by* the tag `method` (each group is one method "
        f"over its seeds and settings) and add the columns `metrics.auc` and `metrics.{noisy}`; in the "
        f"*Chart* view, the chart `{metric}` is each run's robustness curve: test accuracy against the "
        f"noise scale, x axis = step = {curve_factor(scales)} x sigma "
        f"(noise `{space.base['noise']['name']}`, {space.base['eval']['samples']} Monte Carlo draws per scale).\n\n"
        f"The statistics (hyperparameters chosen on validation, mean and 95% CI over seeds, paired "
        f"differences) are in this run's artifacts under `report/` once `sweep report --experiment "
        f"{experiment} --sweep {name}` ran: `report.md`, `report.csv`, `curves.png`, `pareto.png`."
    )


def sweep_tags(section: dict[str, Any], space: Any) -> dict[str, str]:
    """The parent run's tags describing the sweep (`section`: its `sweep:` config, `space`: its SearchSpace)."""
    metric = section["search"]["metric"]
    return {
        "sweep.search": section["search"]["algorithm"],
        "sweep.metric": metric if isinstance(metric, str) else ",".join(metric),
        "sweep.scheduler": section["scheduler"]["name"],
        "sweep.num_trials": str(space.num_trials),
        "sweep.methods": ",".join(space.methods()),
        "sweep.storage": str(section["storage_path"]),
    }


def curve_metrics(prefix: str, curve: dict[str, Any], stamp: int, axis: bool = False) -> list[Any]:
    """`PREFIX/acc` and `PREFIX/ci95` at step = index on the curve's axis (and `PREFIX/x`, the axis value)."""
    from mlflow.entities import Metric

    metrics = []
    for step, point in enumerate(curve["points"]):
        ci = point["ci95"]
        metrics += [Metric(f"{prefix}/acc", point["mean"], stamp, step)]
        metrics += [Metric(f"{prefix}/ci95", math.nan if ci is None else ci, stamp, step)]
        metrics += [Metric(f"{prefix}/x", point["scale"], stamp, step)] if axis else []
    return metrics
