"""A sweep's folder on the storage path and its state file (id and config), which `--resume` reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.fs

from sweep.config import SweepConfig, atomic_write

SWEEP_FILE = "sweep.json"  # {"id": ..., "config": ...} in the sweep's storage folder


def storage_root(path: str) -> str:
    """Ray wants an absolute path or a URI (s3://..., gs://...)."""
    return path if "://" in path else str(Path(path).expanduser().resolve())


def sweep_path(cfg: SweepConfig) -> str:
    return f"{storage_root(cfg.section.storage_path).rstrip('/')}/{cfg.name}"


def read_state(path: str) -> dict[str, Any] | None:
    fs, root = pyarrow.fs.FileSystem.from_uri(path)
    if fs.get_file_info(f"{root}/{SWEEP_FILE}").type == pyarrow.fs.FileType.NotFound:
        return None
    with fs.open_input_stream(f"{root}/{SWEEP_FILE}") as f:
        text = f.readall()
    try:
        return json.loads(text)
    except ValueError:
        from sweep.execution.runtime import SweepError

        raise SweepError(f"{path}/{SWEEP_FILE} is not valid JSON (written by another tool?)") from None


def write_state(path: str, state: dict[str, Any]) -> None:
    """Atomically on a local disk (a kill or a full disk leaves the old file or the new one); object stores
    (s3://, gs://) make each upload whole by themselves."""
    text = json.dumps(state, indent=1)
    if "://" not in path:
        atomic_write(Path(path) / SWEEP_FILE, text)
        return
    fs, root = pyarrow.fs.FileSystem.from_uri(path)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root}/{SWEEP_FILE}") as f:
        f.write(text.encode())


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The dotted key where two JSON trees differ first (None when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if a == b else (path or "(top level)")
