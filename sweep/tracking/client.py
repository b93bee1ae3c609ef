"""MLflow client helpers: the client of a tracking URI, an experiment by name, paged run searches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweep.tracking.names import EXPERIMENT_KIND


def client_for(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(client: Any, name: str, uri: str) -> str:
    """The experiment's id, created if missing, in MLflow's model-training view (`EXPERIMENT_KIND`). A
    SQLite store keeps its artifacts beside the file."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if not any(key in found.tags for key in EXPERIMENT_KIND):  # never override a kind someone chose
            for key, value in EXPERIMENT_KIND.items():
                client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)


def search_all(client: Any, experiment: str, filter_string: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment], filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs
