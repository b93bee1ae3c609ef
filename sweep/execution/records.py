"""A sweep's own records of its trials, which `--resume` reads instead of Ray's experiment state.

Each trial folder (`KEY_RAYID/` under the sweep's folder) holds what Ray and the trial wrote:
`params.json` (the trial config), `result.json` (one line per report), `checkpoint_*/` (each with
`state.pt` and `epoch.json` after an epoch, `final.json` and the deployed model after the last one)
and `ended.json`, written by the driver when the trial ends (finished, stopped early or failed).
A resumed sweep runs only the trials without an end: each from its newest readable checkpoint, in
its own folder, under its own MLflow run. Ray's pickled state (tuner.pkl, searcher and scheduler
pickles) is never read: the storage path may be a shared bucket others can write to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs

from sweep.config import TRIAL_KEY, atomic_write

ENDED_FILE = "ended.json"  # {"status": "finished" | "stopped" | "failed", "epoch": N, "error": "..."}
EPOCH_FILE = "epoch.json"  # {"epoch": N} beside a checkpoint's state.pt
FINAL_FILE = "final.json"  # the last report's metrics; present only in the final checkpoint
ENDED = ("finished", "stopped", "failed")
FOLDER = re.compile(r"^(\d{4}(?:-seed-?\d+)?)_(\w+)$")  # KEY_RAYID, see resume.TrialDirname


def group_number(key: str) -> int:
    """The grid point / search draw of a trial key (`0003` and `0003-seed1` are both group 3)."""
    return int(key.split("-")[0])


@dataclass
class TrialRecord:
    """What the sweep's folder says about one trial."""

    key: str
    folder: str  # its folder's name under the sweep's folder
    trial_id: str  # Ray's id of the trial that made the folder
    config: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    """The reports in result.json, one per epoch (a repeated epoch: the newest report)."""
    status: str = "unfinished"  # or one of ENDED
    error: str = ""
    checkpoints: list[str] = field(default_factory=list)
    """Newest first: the checkpoints after an epoch (fs paths), for a trial that resumes."""
    final: str | None = None  # the final checkpoint (fs path) of a finished trial

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def group(self) -> int:
        return group_number(self.key)

    @property
    def last_result(self) -> dict[str, Any]:
        return self.results[-1] if self.results else {}


def _read(fs: pyarrow.fs.FileSystem, path: str) -> str | None:
    try:
        with fs.open_input_stream(path) as f:
            return f.readall().decode("utf-8", errors="replace")
    except OSError:  # missing (FileNotFoundError) or unreadable
        return None


def _json(fs: pyarrow.fs.FileSystem, path: str) -> Any:
    text = _read(fs, path)
    try:
        return None if text is None else json.loads(text)
    except ValueError:  # torn by a kill or a full disk
        return None


def _results(text: str | None) -> list[dict[str, Any]]:
    by_epoch: dict[int, dict[str, Any]] = {}
    for line in (text or "").splitlines():
        try:
            result = json.loads(line)
        except ValueError:  # a torn last line
            continue
        by_epoch[int(result.get("epoch", 0))] = result
    return [by_epoch[e] for e in sorted(by_epoch)]


def read_trial(
    fs: pyarrow.fs.FileSystem, root: str, name: str, key: str, trial_id: str, scheme: str = ""
) -> TrialRecord:  # fmt: skip
    """`scheme` (`s3://`): put back on the checkpoints' paths, which the trials open as URIs."""
    folder = f"{root}/{name}"
    record = TrialRecord(key, name, trial_id, config=_json(fs, f"{folder}/params.json") or {})
    record.results = _results(_read(fs, f"{folder}/result.json"))
    epochs: list[tuple[int, str]] = []
    for info in fs.get_file_info(pyarrow.fs.FileSelector(folder)):
        if info.type != pyarrow.fs.FileType.Directory or not info.base_name.startswith("checkpoint_"):
            continue
        final = _json(fs, f"{info.path}/{FINAL_FILE}")
        if isinstance(final, dict):
            record.final = scheme + info.path
            record.results = [*[r for r in record.results if r.get("epoch") != final.get("epoch")], final]
        epoch = _json(fs, f"{info.path}/{EPOCH_FILE}")
        if isinstance(epoch, dict) and isinstance(epoch.get("epoch"), int):
            epochs.append((epoch["epoch"], scheme + info.path))
    record.checkpoints = [path for _, path in sorted(epochs, reverse=True)]
    ended = _json(fs, f"{folder}/{ENDED_FILE}")
    if isinstance(ended, dict) and ended.get("status") in ENDED:
        record.status = ended["status"]
        if record.status == "failed":  # Ray's error.txt: every failure's traceback
            record.error = _read(fs, f"{folder}/error.txt") or str(ended.get("error", ""))
    elif record.final is not None:  # the driver died between the last report and its end record
        record.status = "finished"
    return record


def read_records(path: str) -> dict[str, TrialRecord]:
    """Every trial folder under the sweep's folder `path` (a local path or a URI), by trial key. Two
    folders for one key (a sweep resumed by an older version): the one that got furthest."""
    fs, root = pyarrow.fs.FileSystem.from_uri(path)
    scheme = path.split("://")[0] + "://" if "://" in path else ""
    records: dict[str, TrialRecord] = {}
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True)):
        match = FOLDER.match(info.base_name)
        if info.type != pyarrow.fs.FileType.Directory or not match:
            continue
        record = read_trial(fs, root, info.base_name, match.group(1), match.group(2), scheme)
        if record.config.get(TRIAL_KEY) not in (None, record.key):
            continue  # not a folder of this sweep's naming
        other = records.get(record.key)
        if other is None or progress(record) > progress(other):
            records[record.key] = record
    return records


def progress(record: TrialRecord) -> tuple[bool, int]:
    return record.ended, int(record.last_result.get("epoch", 0))


def write_ended(fs: pyarrow.fs.FileSystem, folder: str, status: str, epoch: int, error: str = "") -> None:
    """The trial's end record, written by the driver (a small file: whole or absent after a kill)."""
    text = json.dumps({"status": status, "epoch": epoch, "error": error})
    if isinstance(fs, pyarrow.fs.LocalFileSystem):
        atomic_write(Path(folder) / ENDED_FILE, text)
        return
    with fs.open_output_stream(f"{folder}/{ENDED_FILE}") as f:
        f.write(text.encode())


def clear_ended(path: str, record: TrialRecord) -> None:
    """A failed trial run again (`--retry-failed`): its end record goes; its error stays in MLflow and error.txt."""
    fs, root = pyarrow.fs.FileSystem.from_uri(path)
    fs.delete_file(f"{root}/{record.folder}/{ENDED_FILE}")
    record.status, record.error = "unfinished", ""
