"""MLflow: the client helpers, the names in the store, and the writer that logs a sweep's trials.
Floor 3 of `sweep`: imports `sweep.config` and `sweep.experiment`; never Ray."""

from sweep.tracking.client import (
    check_store,
    client_for,
    experiment_id,
    open_store_early,
    search_all,
    sqlite_file,
    trial_configs,
)
from sweep.tracking.names import (
    CURVE_JSON,
    CURVE_PNG,
    DEPLOY,
    DEPLOY_JSON,
    HISTORY,
    SETTING_PREFIXES,
    curve_factor,
    curve_metric,
    error_line,
    experiment_params,
    flatten,
    param_value,
    scale_label,
)
from sweep.tracking.writer import TrackingWriter

__all__ = [
    "CURVE_JSON",
    "CURVE_PNG",
    "DEPLOY",
    "DEPLOY_JSON",
    "HISTORY",
    "SETTING_PREFIXES",
    "TrackingWriter",
    "check_store",
    "client_for",
    "curve_factor",
    "curve_metric",
    "error_line",
    "experiment_id",
    "experiment_params",
    "flatten",
    "open_store_early",
    "param_value",
    "scale_label",
    "search_all",
    "sqlite_file",
    "trial_configs",
]
