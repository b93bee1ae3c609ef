"""`sweep report`: per method, the hyperparameters chosen on validation and the test robustness over
seeds, read from MLflow. Floor 5 of `sweep`: imports `sweep.tracking`, never Ray."""

from sweep.report.deploy import SettingSummary, matrix_rows, setting_rows
from sweep.report.output import column_width, columns_that_fit, make_report, table_rows, write_csv
from sweep.report.summary import MethodSummary, ReportError, TrialRun, load_runs, mean_ci, summarize
from sweep.report.verdicts import verdict_rows

__all__ = [
    "MethodSummary",
    "ReportError",
    "SettingSummary",
    "TrialRun",
    "column_width",
    "columns_that_fit",
    "load_runs",
    "make_report",
    "matrix_rows",
    "mean_ci",
    "setting_rows",
    "summarize",
    "table_rows",
    "verdict_rows",
    "write_csv",
]
