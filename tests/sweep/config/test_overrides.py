"""`--set` keys: dots separate keys, brackets hold a key with dots, below `sweep.grid` the rest is one key."""

from __future__ import annotations

import pytest

from sweep.config import ConfigError, apply_overrides, load_sweep, parse_overrides


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("train.epochs", ["train", "epochs"]),
        ("seed", ["seed"]),
        ("sweep.grid.method.name", ["sweep", "grid", "method.name"]),
        ('sweep.grid["method.name"]', ["sweep", "grid", "method.name"]),
        ("sweep.grid['noise.sigma']", ["sweep", "grid", "noise.sigma"]),
        ("sweep.space[noise.sigma]", ["sweep", "space", "noise.sigma"]),
        ('sweep.space["noise.sigma"].uniform', ["sweep", "space", "noise.sigma", "uniform"]),
        ("sweep.space.consistency.weight", ["sweep", "space", "consistency", "weight"]),
    ],
)
def test_keys(key: str, path: list[str]) -> None:
    assert parse_overrides([f"{key}=1"]) == [(path, 1)]


@pytest.mark.parametrize("pair", ["a..b=1", "a.=1", "train.epochs", "a.b[c=1", "=3", 'x["a.b"=1'])
def test_bad_keys_name_the_syntax(pair: str) -> None:
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        parse_overrides([pair])


def test_a_grid_axis_with_dots_is_replaced_not_nested(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "method: {name: baseline}\ntrain: {epochs: 2}\n"
        "sweep:\n  grid:\n    method.name: [baseline, noise_injection]\n    seed: [0, 1]\n"
    )
    cfg = load_sweep(
        path, ["sweep.grid.method.name=[noise_injection, nft]", 'sweep.space["noise.sigma"]={grid: [0.1, 0.3]}']
    )
    assert cfg.section.grid["method.name"] == ["noise_injection", "nft"]
    assert [p["noise.sigma"] for p in cfg.space.points()] == [0.1, 0.3, 0.1, 0.3]
    assert cfg.space.num_trials == 8
    raw = apply_overrides({"sweep": {"grid": {"seed": [0]}}}, ['sweep.grid["seed"]=[4, 5]'])
    assert raw == {"sweep": {"grid": {"seed": [4, 5]}}}
