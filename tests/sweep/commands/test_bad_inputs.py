"""Bad input to any command: one line on stderr naming the problem, exit code 2, no traceback, no work.
In-process (`sweep.cli.main`), so the whole list costs seconds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from sweep.cli import main

ROOT = Path(__file__).resolve().parents[3]
DIGITS = (ROOT / "configs" / "digits.yaml").read_text()


def one_line_exit_2(argv: list[str], capsys, message: str) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert message in err, err
    assert "\n" not in err and "Traceback" not in captured.out + captured.err
    return err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "folder.yaml").mkdir()
    made = {
        "empty": b"",
        "binary": b"\xff\xfe\x00garbage",
        "dup": b"train:\n  epochs: 2\n  lr: 0.1\n  epochs: 3\n",
        "malformed": b"train:\n  epochs: [2\n",
        "text": b"not a database\n",
        "digits": DIGITS.encode(),
    }
    paths = {name: tmp_path / f"{name}.yaml" for name in made}
    for name, content in made.items():
        paths[name].write_bytes(content)
    paths["folder"] = tmp_path / "folder.yaml"
    paths["tmp"] = tmp_path
    return paths


@pytest.mark.parametrize(
    "command, name, extra, message",
    [
        ("train", "folder", [], "is a folder, not a YAML file"),
        ("run", "binary", [], "not a UTF-8 text file"),
        ("train", "empty", [], "the file is empty"),
        ("train", "dup", [], "line 4, column 3: key 'epochs' is given twice"),
        ("run", "malformed", [], "not valid YAML: line 3, column 1"),
        ("run", "digits", ["--set", "sweep.grid={method.name: [baseline, baselin]}"], "unknown method 'baselin'"),
        ("train", "digits", ["--set", "noise.sigma=.inf"], "noise.sigma: Input should be a finite number"),
        ("train", "digits", ["--set", "train.lr=.nan"], "train.lr: Input should be a finite number"),
        ("train", "digits", ["--set", "model.options.hidden=[1000000000000]"], "parameters; at most 1e+09"),
        ("run", "digits", ["--set", "sweep.tracking.uri=sqlite:///{tmp}/text.yaml"], "is not an SQLite database"),
        ("run", "digits", ["--set", "sweep.tracking.uri=sqlite:///{tmp}"], "is a folder, not an SQLite file"),
        ("run", "digits", ["--set", "sweep.tracking.uri=file:///{tmp}/mlruns"], "MLflow's file store is retired"),
        ("train", "digits", ["--out", "{tmp}/text.yaml"], "is a file, not a folder"),
        ("run", "digits", ["--set", "train.epochs=2", "--set", "train[epochs]=3"], "--set train[epochs]: the key is"),
        ("train", "digits", ["--set", "seed=1", "--set", "seed=1"], "--set seed: the key is given twice"),
    ],
)
def test_bad_config_or_option(files, command: str, name: str, extra: list[str], message: str, capsys) -> None:
    extra = [e.replace("{tmp}", str(files["tmp"])) for e in extra]
    one_line_exit_2([command, str(files[name]), *extra], capsys, message)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_config(files, capsys) -> None:
    files["digits"].chmod(0)
    one_line_exit_2(["train", str(files["digits"])], capsys, "cannot read the file")


def test_dead_tracking_server_is_refused_in_seconds_before_ray(files, capsys) -> None:
    start = time.perf_counter()
    one_line_exit_2(
        ["run", str(files["digits"]), "--set", "sweep.tracking.uri=http://127.0.0.1:9"], capsys, "does not answer"
    )
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize(
    "uri, message",
    [("sqlite:///{tmp}/text.yaml", "is not an SQLite database"), ("http://127.0.0.1:9", "does not answer")],
)
def test_report_on_a_bad_store_fails_fast(files, uri: str, message: str, capsys) -> None:
    start = time.perf_counter()
    one_line_exit_2(["report", "--tracking-uri", uri.replace("{tmp}", str(files["tmp"]))], capsys, message)
    assert time.perf_counter() - start < 10


def test_eval_outputs_and_scales(files, capsys) -> None:
    one_line_exit_2(["eval", "nope.pt", "--json", str(files["tmp"])], capsys, "--json")


def test_sweep_names_from_non_ascii_file_names_stay_unique(tmp_path: Path) -> None:
    from sweep.config import load_sweep

    names = set()
    for stem in ("Versuch-ä", "Versuch-ö", "Versuch-ü", "Versuch"):
        path = tmp_path / f"{stem}.yaml"
        path.write_text(DIGITS)
        names.add(load_sweep(path).name)
    assert len(names) == 4 and "Versuch" in names  # an ASCII name stays as it is
    assert all(name.isascii() for name in names)


def test_a_sweep_config_section_round_trips(tmp_path: Path) -> None:
    """The saved config (sweep.json) rebuilds the same sweep: what `--resume` without --set runs."""
    from sweep.config import build_sweep, load_sweep, split_raw

    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(DIGITS), "seed": 3}))
    cfg = load_sweep(path, ["train.epochs=4"])
    base, section = split_raw(cfg.to_dict())
    assert build_sweep(base, section, "other").to_dict() == cfg.to_dict()
