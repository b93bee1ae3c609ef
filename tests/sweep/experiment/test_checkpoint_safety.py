"""Loading a checkpoint never runs code from the file, and a foreign file is refused in one line."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from sweep.cli import main


class Payload:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path: Path, legacy: bool, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": 1, "x": Payload(marker)}, evil, _use_new_zipfile_serialization=not legacy)
    assert main(["eval", str(evil)]) == 2
    err = capsys.readouterr().err.strip()
    assert not marker.exists(), "code in the checkpoint was executed"
    assert "refused" in err and "\n" not in err


@pytest.mark.parametrize(
    "content, message",
    [
        (os.urandom(4096), "not a readable torch file"),
        (b"", "not a readable torch file"),
        (b"just some text\n", "not a readable torch file"),
        (pickle.dumps([1, 2, 3]), "not a readable torch file"),
    ],
    ids=["random-bytes", "empty", "text", "raw-pickle"],
)
def test_garbage_file_is_one_line(tmp_path: Path, content: bytes, message: str, capsys) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_tensor_file_that_is_no_checkpoint(tmp_path: Path, capsys) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save([torch.zeros(3)], path)
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a noisesweep checkpoint (list" in err and "\n" not in err
