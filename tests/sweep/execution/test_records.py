"""What `--resume` reads from a sweep's folder (no Ray runtime needed): each trial's status, its
checkpoints newest first, and the newest one that loads when a kill or a full disk tore the last."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sweep.execution.records import read_records
from sweep.execution.resume import Resumption
from sweep.execution.trainable import STATE_FILE, earlier_state


def trial(root: Path, name: str, epochs: list[int], ended: str | None = None, final: bool = False) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    key = name.split("_")[0]
    (folder / "params.json").write_text(json.dumps({"seed": int(key[-1]), "trial_key": key}))
    lines = [json.dumps({"epoch": e, "val_acc": e / 10}) for e in epochs]
    (folder / "result.json").write_text("\n".join([*lines, '{"epoch": 9, "val'][: len(lines) + 1]))  # torn tail
    for index, epoch in enumerate(epochs):
        checkpoint = folder / f"checkpoint_{index:06d}"
        checkpoint.mkdir()
        torch.save({"epoch": epoch, "history": [{"epoch": e} for e in range(1, epoch + 1)]}, checkpoint / STATE_FILE)
        (checkpoint / "epoch.json").write_text(json.dumps({"epoch": epoch}))
    if final:
        checkpoint = folder / f"checkpoint_{len(epochs):06d}"
        checkpoint.mkdir()
        (checkpoint / "final.json").write_text(json.dumps({"epoch": epochs[-1] + 1, "final": True, "auc": 0.9}))
    if ended:
        (folder / "ended.json").write_text(json.dumps({"status": ended, "epoch": epochs[-1], "error": "E"}))
        (folder / "error.txt").write_text("Failure # 1\nValueError: boom\n")
    return folder


def test_records_of_a_sweep_folder(tmp_path: Path) -> None:
    trial(tmp_path, "0000-seed0_aa11", [1, 2], ended="finished", final=True)
    trial(tmp_path, "0000-seed1_bb22", [1, 2], final=True)  # the driver died before ended.json
    torn = trial(tmp_path, "0001-seed0_cc33", [1, 2])
    (torn / "checkpoint_000001" / STATE_FILE).write_bytes(b"PK\x03\x04 torn")
    trial(tmp_path, "0001-seed1_dd44", [1], ended="failed")
    (tmp_path / "experiment_state-2026.json").write_text('{"torn')  # Ray's own files: not read
    (tmp_path / ".unrestorable-1" / "0002-seed0_ee55").mkdir(parents=True)

    records = read_records(str(tmp_path))
    assert {k: r.status for k, r in records.items()} == {
        "0000-seed0": "finished", "0000-seed1": "finished", "0001-seed0": "unfinished", "0001-seed1": "failed",
    }  # fmt: skip
    assert records["0000-seed1"].last_result == {"epoch": 3, "final": True, "auc": 0.9}
    assert "ValueError: boom" in records["0001-seed1"].error
    unfinished = records["0001-seed0"]
    assert [r["epoch"] for r in unfinished.results] == [1, 2]  # the torn last line is skipped
    assert [Path(c).name for c in unfinished.checkpoints] == ["checkpoint_000001", "checkpoint_000000"]
    assert earlier_state(unfinished.checkpoints)["epoch"] == 1  # the newest is torn: the one before
    assert earlier_state([]) is None

    before = Resumption(records)
    assert [r.key for r in before.ended] == ["0000-seed0", "0000-seed1", "0001-seed1"]
    assert before.resume_from() == {"0001-seed0": unfinished.checkpoints}
    assert before.folders()["0001-seed0"] == "0001-seed0_cc33"
    assert before.history("val_acc")["0001-seed0"] == [(1, 0.1), (2, 0.2)]


def test_resumed_asha_starts_with_the_recorded_rungs() -> None:
    """ASHA (grace 1, factor 2, max 4: rungs at epochs 1 and 2) after a resume judges a trial against the
    reports recorded before: the trials that ended and the resumed trial's own earlier epochs."""
    from types import SimpleNamespace

    from sweep.execution.resume import ResumedASHA

    history = {"a": [(1, 0.9), (2, 0.95)], "b": [(1, 0.8), (2, 0.85)], "c": [(1, 0.1)]}
    asha = ResumedASHA(
        history, {"a", "b"}, time_attr="epoch", metric="val_acc", mode="max", max_t=4, grace_period=1,
        reduction_factor=2,
    )  # fmt: skip
    rungs = {milestone: recorded for milestone, recorded in asha._brackets[0]._rungs}
    assert rungs[1] == {"a": 0.9, "b": 0.8} and rungs[2] == {"a": 0.95, "b": 0.85}
    resumed = SimpleNamespace(trial_id="new-id", config={"trial_key": "c"})
    asha.on_trial_add(None, resumed)
    assert rungs[1]["new-id"] == 0.1  # its epoch 1 counts under its new Ray id, once
    assert asha.on_trial_result(None, resumed, {"epoch": 2, "val_acc": 0.5}) == "STOP"  # below the median 0.9
