"""The parser: bare `sweep` shows the help, `--version`, every subcommand described, `sweep config`."""

from __future__ import annotations

import subprocess
import sys

import yaml

from sweep.cli import COMMANDS, build_parser


def sweep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweep", *args], capture_output=True, text=True, timeout=120)


def test_bare_sweep_prints_the_help_and_version_works() -> None:
    bare = sweep()
    assert bare.returncode == 0 and "usage: sweep" in bare.stdout and "COMMAND" in bare.stdout
    assert all(name in bare.stdout for name in COMMANDS)
    version = sweep("--version")
    assert version.returncode == 0 and version.stdout.startswith("sweep 0.")


def test_every_subcommand_has_a_description() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name in COMMANDS:
        assert len(subparsers.choices[name].description or "") > 30, name


def test_config_prints_the_resolved_sweep_with_overrides(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("method: {name: baseline}\ntrain: {epochs: 2}\nsweep:\n  grid:\n    method.name: [baseline]\n")
    done = sweep("config", str(path), "--set", "sweep.grid.method.name=[dropout,nft]", "--set", "train.lr=0.01")
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert resolved["sweep"]["grid"]["method.name"] == ["dropout", "nft"]
    assert resolved["train"]["lr"] == 0.01 and resolved["train"]["epochs"] == 2
    assert resolved["eval"]["scales"] and resolved["sweep"]["search"]["algorithm"] == "grid"  # defaults filled in
    bad = sweep("config", str(path), "--set", "train.lr=fast")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "train.lr" in bad.stderr
