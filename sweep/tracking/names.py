"""Names in the MLflow store and in a trial's reports and checkpoints, shared by the trials that write
them, the tracker that logs them and the report that reads them."""

from __future__ import annotations

import json
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


def number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def error_line(text: str) -> str:
    """The exception line of a traceback (`FloatingPointError: loss became nan ...`), at most 500 characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if ("Error" in line or "Exception" in line) and ":" in line:
            return line[:500]
    return (lines[-1] if lines else "unknown error")[:500]
