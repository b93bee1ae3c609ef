"""The `sweep:` section: its checks (one line naming the field, before Ray starts), the grid points,
the trial configs and how a trial config becomes an experiment. No Ray runtime here."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.config import GROUP, TRIAL_KEY, ConfigError, OptunaSpace, build_sweep, load_config, load_sweep

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

BASE = {
    "data": {"name": "digits"},
    "model": {"name": "mlp", "options": {"hidden": 16, "depth": 1}},
    "method": {"name": "consistency", "weight": 2.0},
    "train": {"epochs": 3},
    "eval": {"scales": [0.0, 0.1], "samples": 2},
}
SECTION = {
    "grid": {"method.name": ["baseline", "consistency", "adversarial"], "seed": [0, 1]},
    "space": {
        "consistency": {"weight": {"grid": [0.5, 1.0]}, "distance": "cosine"},
        "adversarial": {"beta": {"loguniform": [0.05, 0.5]}, "attack_steps": {"randint": [1, 3]}},
    },
}


def sweep_of(section: dict, base: dict | None = None):
    return build_sweep(copy.deepcopy(base or BASE), copy.deepcopy(section), "test")


def error_of(section: dict, base: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        sweep_of(section, base)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_is_a_valid_sweep_and_experiment(path: Path):
    cfg = load_sweep(path)
    assert cfg.name == path.stem and cfg.space.num_trials >= 2
    assert load_config(path).model_dump() == cfg.experiment.model_dump()  # `sweep train` reads the same base


def test_main_job_covers_every_registered_method_with_three_seeds():
    import methods

    space = load_sweep(ROOT / "configs" / "digits.yaml").space
    assert sorted(space.methods()) == methods.names()
    assert space.seeds == [0, 1, 2]
    assert space.experiment(space.points()[0]).eval.scales[-1] == pytest.approx(0.4)


def test_points_expand_grid_domains_per_method_and_keep_constants():
    space = sweep_of(SECTION).space
    points = space.points()
    assert points == [
        {"method.name": "baseline"},
        {"method.name": "consistency", "consistency.distance": "cosine", "consistency.weight": 0.5},
        {"method.name": "consistency", "consistency.distance": "cosine", "consistency.weight": 1.0},
        {"method.name": "adversarial"},
    ]
    assert space.num_trials == 4 * 1 * 2


def test_grid_configs_draw_random_domains_within_bounds_and_reproducibly():
    section = {**SECTION, "search": {"num_samples": 5, "seed": 3}}
    configs = sweep_of(section).space.grid_configs()
    assert len(configs) == 4 * 5 and [c[GROUP] for c in configs] == list(range(20))
    adversarial = [c for c in configs if c["method.name"] == "adversarial"]
    assert all(0.05 <= c["adversarial.beta"] <= 0.5 and c["adversarial.attack_steps"] in (1, 2, 3) for c in adversarial)
    assert len({c["adversarial.beta"] for c in adversarial}) == 5
    assert all("adversarial.beta" not in c for c in configs if c["method.name"] != "adversarial")
    assert configs == sweep_of(section).space.grid_configs()


def test_a_trial_config_becomes_its_experiment():
    space = sweep_of(SECTION).space
    cfg = space.experiment({"method.name": "consistency", "consistency.weight": 0.5, "seed": 1, TRIAL_KEY: "0001"})
    assert (cfg.method.name, cfg.method.weight, cfg.seed) == ("consistency", 0.5, 1)
    kept = space.experiment({"method.name": "consistency", "seed": 0})
    assert kept.method.weight == 2.0  # the base method keeps the base's hyperparameters
    other = space.experiment({"method.name": "adversarial", "adversarial.beta": 0.3, "consistency.weight": 9})
    assert (other.method.name, other.method.beta) == ("adversarial", 0.3)  # another method starts from defaults
    assert space.experiment({"noise.sigma": 0.1, "train.lr": 0.01}).noise.sigma == pytest.approx(0.1)


def test_optuna_space_cycles_grid_points_and_suggests_each_methods_own_knobs():
    import optuna

    space = sweep_of({**SECTION, "search": {"algorithm": "optuna", "num_samples": 2}}).space
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    define = OptunaSpace(space)
    seen = []
    for _ in range(8):
        trial = study.ask()
        constants = define(trial)
        seen.append(constants["method.name"])
        if constants["method.name"] == "adversarial":
            assert set(trial.params) == {"adversarial.beta", "adversarial.attack_steps"}
            assert 0.05 <= trial.params["adversarial.beta"] <= 0.5
        else:
            assert trial.params == {}
        study.tell(trial, 0.5)
    assert seen == ["baseline", "consistency", "consistency", "adversarial"] * 2


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"gird": {}}, "sweep.gird: unknown key; allowed: failure, grid, name, report_interval, resources, scheduler"),
        ({"search": {"algorithm": "bayes"}}, "sweep.search.algorithm: Input should be 'grid' or 'optuna'"),
        ({"search": {"metric": "test_acc"}}, "sweep.search.metric: must be one of, or a list of distinct, val_auc"),
        ({"scheduler": {"name": "asha", "reduction_factor": 1}}, "sweep.scheduler.reduction_factor: Input should be"),
        ({"resources": {"cpus_per_trial": 0}}, "sweep.resources.cpus_per_trial: Input should be greater than 0"),
        ({"grid": {"seed": []}}, "sweep.grid: axis 'seed' needs at least one value"),
        ({"grid": {"train.epoch": [1, 2]}}, "sweep.grid: train.epoch: unknown key; allowed: batch_size,"),
        ({"grid": {"train.epochs": [0, 2]}}, "sweep.grid: train.epochs: Input should be greater than or equal to 1"),
        ({"grid": {"method.name": ["baseline", "magic"]}}, "sweep.grid.method.name: unknown method 'magic'; allowed"),
        ({"grid": {"eval.seed": [1, 2]}}, "sweep.grid.eval.seed: eval.seed is shared by all trials"),
        ({"grid": {"seed": ["a"]}}, "sweep.grid: seed: Input should be a valid integer"),
        (
            {"grid": {"method.name": ["baseline"], "method.weight": [1.0]}},
            "sweep.grid.method.weight: with method.name as a grid axis, put a method's hyperparameters under",
        ),
        ({"space": {"magic": {"x": 1}}}, "sweep.space.magic: unknown method 'magic'; allowed: adversarial,"),
        ({"space": {"baseline": {"x": 1}}}, "sweep.space.baseline: method 'baseline' is not in this sweep"),
        ({"space": {"consistency": {"wieght": 1}}}, "sweep.space.consistency.wieght: method 'consistency' has no"),
        ({"space": {"consistency": {"weight": {"normal": [0, 1]}}}}, "sweep.space.consistency.weight: a domain is"),
        ({"space": {"consistency": {"weight": {"uniform": [2, 1]}}}}, "uniform needs [low, high] with low < high"),
        ({"space": {"consistency": {"weight": {"loguniform": [0, 1]}}}}, "loguniform needs low > 0"),
        ({"space": {"consistency": {"weight": {"uniform": [-1, 1]}}}}, "sweep.space.consistency.weight: method.weigh"),
        ({"space": {"seed": {"grid": [1, 2]}}}, "sweep.space.seed: seeds are a grid axis"),
        ({"space": {"train.lr": 0.1}}, "sweep.space.train.lr: expected a domain"),
        ({"space": {"train.lrr": {"uniform": [0.1, 1]}}}, "sweep.space.train.lrr: train.lrr: unknown key"),
        ({"search": {"num_samples": 3}}, "sweep.search.num_samples: 3 samples of a space without random domains"),
        ({"search": {"algorithm": "optuna"}}, "sweep.search.algorithm: optuna needs a random domain"),
        ({"scheduler": {"name": "asha", "grace_period": 3}}, "sweep.scheduler.grace_period: must be less than"),
    ],
)
def test_bad_sweep_sections_fail_in_one_line_naming_the_field(section: dict, expected: str):
    assert expected in error_of(section)


def test_sweep_train_checks_the_sweep_section(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: 2}\nsweep:\n  grid: {noise.sigmaa: [0.1]}\n")
    with pytest.raises(ConfigError, match="sweep.grid: noise.sigmaa: unknown key"):
        load_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("swep: {}\n")
    with pytest.raises(ConfigError, match="swep: unknown key; allowed: data, eval, method, model, noise, seed, sweep"):
        load_config(typo)


def test_sweep_run_reports_a_bad_config_in_one_line_before_ray_starts(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"sweep:\n  storage_path: {tmp_path / 'runs'}\n  space:\n    consistency: {{weight: 1}}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", "run", str(bad)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "sweep.space.consistency: method 'consistency' is not in this sweep (methods: baseline)" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_sweep_run_refuses_to_overwrite_and_to_resume_something_else(tmp_path: Path):
    from sweep.execution import SweepError, run_sweep, sweep_path, write_state

    section = {"grid": {"seed": [0, 1]}, "storage_path": str(tmp_path / "runs")}
    cfg = sweep_of(section)
    with pytest.raises(SweepError, match="--resume: no sweep 'test' under"):
        run_sweep(cfg, resume=True)
    write_state(sweep_path(cfg), {"id": "abc", "config": cfg.to_dict()})
    assert (tmp_path / "runs" / "test" / "sweep.json").is_file()
    with pytest.raises(SweepError, match="already holds sweep 'test'; pass --resume to continue it"):
        run_sweep(cfg)
    changed = sweep_of(section, {**BASE, "train": {"epochs": 5}})
    with pytest.raises(SweepError, match="the config differs from the one sweep 'test' started with at train.epochs"):
        run_sweep(changed, resume=True)


@pytest.mark.parametrize("algorithm", ["grid", "optuna"])
def test_search_state_survives_a_restore_and_repeats_each_draw_per_seed(tmp_path: Path, algorithm: str):
    """What Ray saves with the experiment (wrapper state + base searcher file) continues the same
    sequence of trials in a fresh process, and every seed of a draw shares its hyperparameters."""
    from sweep.execution.searchers import build_search

    section = {
        **SECTION,
        "space": {"adversarial": {"beta": {"loguniform": [0.05, 0.5]}}},
        "search": {"algorithm": algorithm, "num_samples": 2},
    }
    space = sweep_of(section).space

    def fresh():
        return build_search(space, ["val_auc"])

    whole = fresh()
    expected = [whole.suggest(f"t{i}") for i in range(space.num_trials)]
    assert [c[TRIAL_KEY] for c in expected[:4]] == ["0000-seed0", "0000-seed1", "0001-seed0", "0001-seed1"]
    assert all(expected[i]["seed"] == i % 2 for i in range(len(expected)))
    pairs = [(a, b) for a, b in zip(expected[::2], expected[1::2], strict=True)]
    assert all({**a, "seed": 0, TRIAL_KEY: ""} == {**b, "seed": 0, TRIAL_KEY: ""} for a, b in pairs)

    first = fresh()
    got = [first.suggest(f"t{i}") for i in range(5)]
    state = first.get_state()
    first.searcher.save(str(tmp_path / "searcher.pkl"))
    restored = fresh()
    restored.set_state(state)
    restored.searcher.restore(str(tmp_path / "searcher.pkl"))
    got += [restored.suggest(f"t{i}") for i in range(5, space.num_trials)]
    assert got == expected
