"""MLflow client helpers: the client of a tracking URI, an experiment by name, paged run searches."""

from __future__ import annotations

import os
import threading
import urllib.request
from pathlib import Path
from typing import Any

from sweep.config import ConfigError
from sweep.tracking.names import EXPERIMENT_KIND

SQLITE_MAGIC = b"SQLite format 3\x00"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a `sqlite:///PATH` store, else None."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def check_store(uri: str, timeout: float = 5.0) -> None:
    """A tracking store the sweep can write, checked in seconds before any work: ConfigError (one line)
    for a folder or a non-database file behind sqlite:///, a file store, or a server that does not answer."""
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme == "sqlite":
        path = sqlite_file(uri)
        if path is None:
            raise ConfigError(f"tracking uri {uri!r}: expected sqlite:///PATH, e.g. sqlite:///mlflow.db")
        if path.is_dir():
            raise ConfigError(f"tracking uri {uri!r}: {path} is a folder, not an SQLite file")
        if path.is_file() and path.stat().st_size > 0:
            with path.open("rb") as f:
                if f.read(16) != SQLITE_MAGIC:
                    raise ConfigError(f"tracking uri {uri!r}: {path} is not an SQLite database")
        elif not path.parent.is_dir():
            raise ConfigError(f"tracking uri {uri!r}: folder {path.parent} does not exist")
    elif scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
                response.read(64)
        except (OSError, ValueError) as err:  # URLError, timeouts, refused connections
            reason = getattr(err, "reason", err)
            raise ConfigError(f"tracking uri {uri!r}: the MLflow server does not answer ({reason})") from None
    elif scheme in ("", "file"):
        raise ConfigError(
            f"tracking uri {uri!r}: MLflow's file store is retired; use a database, e.g. sqlite:///mlflow.db"
        )


_STORE_LOCK = threading.Lock()


def client_for(uri: str) -> Any:
    """An MLflow client of `uri`. Building it opens the store (for a new SQLite file: creates its tables,
    seconds); one thread at a time, so `open_store_early` and a later client never both create them."""
    # MLflow retries an unreachable server for minutes by default; a few seconds tell the same
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per small artifact read
    from mlflow.tracking import MlflowClient

    with _STORE_LOCK:
        return MlflowClient(tracking_uri=uri)


def open_store_early(uri: str) -> None:
    """Create a new SQLite store's tables in a background thread (seconds of CPU), so that it overlaps
    Ray's start-up instead of the first trials; errors are left to the tracker, which reports them."""
    path = sqlite_file(uri)
    if path is None or path.exists():
        return

    def create() -> None:
        try:
            client_for(uri)
        except Exception:  # noqa: BLE001 - the tracker opens the store again and says what is wrong
            pass

    threading.Thread(target=create, name="mlflow-store", daemon=True).start()


def experiment_id(client: Any, name: str, uri: str) -> str:
    """The experiment's id, created if missing, in MLflow's model-training view (`EXPERIMENT_KIND`). A
    SQLite store keeps its artifacts beside the file."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if not any(key in found.tags for key in EXPERIMENT_KIND):  # never override a kind someone chose
            for key, value in EXPERIMENT_KIND.items():
                client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id
    path = sqlite_file(uri)
    location = None if path is None else (path.resolve().parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)


def search_all(client: Any, experiment: str, filter_string: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment], filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def trial_configs(uri: str, experiment: str, sweep_id: str) -> dict[str, dict[str, Any]]:
    """Trial key -> the overrides its MLflow run was created with (tag `sweep.trial_config`), over the
    trial runs of sweep `sweep_id`: the values of a trial whose run exists but whose folder does not (a
    driver killed in between), for a resumed search to ask again. Empty when the store has none."""
    import json

    client = client_for(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return {}
    runs = search_all(
        client, found.experiment_id, f"tags.`sweep.id` = '{sweep_id}' and tags.`sweep.role` = 'trial'"
    )  # fmt: skip
    tags = {run.data.tags.get("sweep.trial_key", ""): run.data.tags.get("sweep.trial_config", "") for run in runs}
    return {key: json.loads(config) for key, config in tags.items() if key and config}
