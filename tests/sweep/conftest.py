"""Sweep tests: one real Ray runtime (2 CPUs) shared by the tests that need it, tiny trials, and a
temporary SQLite MLflow store per test."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TINY_BASE: dict[str, Any] = {
    "data": {"name": "digits"},
    "model": {"name": "lenet", "options": {"channels": [4, 8], "hidden": [16]}},
    "method": {"name": "baseline"},
    "train": {"epochs": 2, "batch_size": 128, "lr": 0.005, "val_noise_samples": 1},
    "noise": {"name": "additive", "sigma": 0.1},
    "eval": {"scales": [0.0, 0.1, 0.2], "samples": 3, "seed": 1234},
}
"""LeNet on digits, two epochs: a trial takes about a second."""


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[None]:
    import ray

    from sweep.execution import start_ray

    started = not ray.is_initialized()
    start_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


@pytest.fixture
def tiny_base() -> dict[str, Any]:
    return copy.deepcopy(TINY_BASE)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite file with its tables created: creating them takes seconds, copying it none."""
    from sweep.tracking import client_for

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    client_for(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def make_sweep(tmp_path: Path, empty_store: Path) -> Callable[..., Any]:
    """make_sweep(section, base=TINY_BASE): a validated sweep keeping its Ray results and its own
    MLflow store under `tmp_path`."""
    from sweep.config import build_sweep

    shutil.copyfile(empty_store, tmp_path / "mlflow.db")

    def make(section: dict[str, Any], base: dict[str, Any] | None = None, name: str = "t") -> Any:
        section = {
            **copy.deepcopy(section),
            "name": name,
            "storage_path": str(tmp_path / "runs"),
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "test"},
        }
        return build_sweep(copy.deepcopy(base or TINY_BASE), section, name)

    return make


@pytest.fixture
def mlflow_runs(tmp_path: Path) -> Callable[[], tuple[Any, list[Any]]]:
    """mlflow_runs(): (parent run, child runs sorted by trial key) of the sweep in `tmp_path`'s store."""
    from sweep.tracking import client_for, search_all

    def runs() -> tuple[Any, list[Any]]:
        client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("test").experiment_id
        parents = search_all(client, experiment, "tags.`sweep.role` = 'parent'")
        assert len(parents) == 1
        children = search_all(client, experiment, "tags.`sweep.role` = 'trial'")
        assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
        return parents[0], sorted(children, key=lambda r: r.data.tags["sweep.trial_key"])

    return runs


@pytest.fixture
def assert_complete(tmp_path: Path, mlflow_runs) -> Callable[[list[str], int, Path], list[Any]]:
    """assert_complete(keys, epochs, folder): the sweep in `tmp_path`'s store ended (parent FINISHED) with
    one FINISHED run per trial key holding its final metrics and every epoch once, and `folder` holds one
    trial folder per key. Returns the runs."""
    from sweep.tracking import client_for

    def check(keys: list[str], epochs: int, folder: Path) -> list[Any]:
        parent, runs = mlflow_runs()
        assert parent.info.status == "FINISHED"
        assert [r.data.tags["sweep.trial_key"] for r in runs] == sorted(keys)  # one run per trial
        client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
        for run in runs:
            assert run.info.status == "FINISHED" and "auc" in run.data.metrics
            steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")]
            assert sorted(steps) == list(range(1, epochs + 1)), run.data.tags["sweep.trial_key"]
        folders = [p.name.split("_")[0] for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        assert sorted(folders) == sorted(keys)  # no trial folder twice
        return runs

    return check
