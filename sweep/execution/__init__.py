"""Ray Tune: the trial, the search algorithms, the MLflow callback, the cluster checks, the runner and the
records a resumed sweep reads.
Floor 4 of `sweep`, the only one that imports Ray."""

from sweep.execution.results import SweepOutcome, pareto_groups, summary_table
from sweep.execution.runner import run_sweep
from sweep.execution.runtime import SweepError, start_ray
from sweep.execution.storage import read_state, sweep_path, write_state

__all__ = [
    "SweepError",
    "SweepOutcome",
    "pareto_groups",
    "read_state",
    "run_sweep",
    "start_ray",
    "summary_table",
    "sweep_path",
    "write_state",
]
