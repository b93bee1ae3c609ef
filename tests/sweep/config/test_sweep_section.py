"""The `sweep:` section: its checks (one line naming the field, before Ray starts), the grid points,
the trial configs and how a trial config becomes an experiment. No Ray runtime here."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.config import GROUP, TRIAL_KEY, ConfigError, build_sweep, load_config, load_sweep

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


def test_main_job_covers_every_registered_method_with_five_seeds_and_equal_budgets():
    import methods

    space = load_sweep(ROOT / "configs" / "digits.yaml").space
    assert sorted(space.methods()) == methods.names()
    assert space.seeds == [0, 1, 2, 3, 4]
    assert set(space.budgets().values()) == {1} and space.num_trials == 5 * len(methods.names())
    sigmas = {space.experiment(space._first_point(m)).noise.sigma for m in space.methods()}
    assert sigmas == {0.2}  # the same training noise scale for every method that trains under noise
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
    # points without a random domain run once: 1 + 2 (consistency's grid) + 5 draws of adversarial
    assert len(configs) == 3 + 5 and [c[GROUP] for c in configs] == list(range(8))
    adversarial = [c for c in configs if c["method.name"] == "adversarial"]
    assert all(0.05 <= c["adversarial.beta"] <= 0.5 and c["adversarial.attack_steps"] in (1, 2, 3) for c in adversarial)
    assert len({c["adversarial.beta"] for c in adversarial}) == 5
    assert all("adversarial.beta" not in c for c in configs if c["method.name"] != "adversarial")
    assert configs == sweep_of(section).space.grid_configs()


def test_a_budget_gives_every_method_the_same_number_of_configurations():
    section = {
        "grid": {"method.name": ["baseline", "noise_injection", "consistency"], "seed": [0, 1]},
        "space": {
            "noise_injection": {"noise.sigma": {"uniform": [0.05, 0.4]}},
            "consistency": {"weight": {"grid": [0.3, 1.0, 3.0]}, "noise.sigma": {"choice": [0.1, 0.2, 0.3]}},
        },
        "search": {"budget": 8},
    }
    space = sweep_of(section).space
    assert space.budgets() == {"baseline": 1, "noise_injection": 8, "consistency": 8}
    assert [n for p, n in space.draws() if p["method.name"] == "consistency"] == [3, 3, 2]
    configs = space.grid_configs()
    sigmas = [c["noise_injection.noise.sigma"] for c in configs if c["method.name"] == "noise_injection"]
    assert len(set(sigmas)) == 8 and all(0.05 <= s <= 0.4 for s in sigmas)
    assert space.num_trials == (1 + 8 + 8) * 2
    cfg = space.experiment({"method.name": "noise_injection", "noise_injection.noise.sigma": 0.3, "seed": 1})
    assert cfg.noise.sigma == pytest.approx(0.3) and cfg.method.name == "noise_injection"
    other = space.experiment({"method.name": "baseline", "noise_injection.noise.sigma": 0.3})
    assert other.noise.sigma == pytest.approx(0.2)  # the default: the key belongs to noise_injection only
    assert space.notes() == [
        "baseline: no random domain, so each grid point runs once per seed (budget 8 would repeat identical "
        "trials); configurations per method: baseline 1, noise_injection 8, consistency 8"
    ]


def test_num_samples_never_repeats_a_point_without_random_domains():
    space = sweep_of({**SECTION, "space": {"consistency": {"weight": 0.5}}, "search": {"num_samples": 3}}).space
    assert space.num_groups == 3 and space.num_trials == 6
    assert "num_samples 3 would repeat identical trials" in space.notes()[0]
    assert sweep_of(SECTION).space.notes() == []


def test_a_trial_config_becomes_its_experiment():
    space = sweep_of(SECTION).space
    cfg = space.experiment({"method.name": "consistency", "consistency.weight": 0.5, "seed": 1, TRIAL_KEY: "0001"})
    assert (cfg.method.name, cfg.method.weight, cfg.seed) == ("consistency", 0.5, 1)
    kept = space.experiment({"method.name": "consistency", "seed": 0})
    assert kept.method.weight == 2.0  # the base method keeps the base's hyperparameters
    other = space.experiment({"method.name": "adversarial", "adversarial.beta": 0.3, "consistency.weight": 9})
    assert (other.method.name, other.method.beta) == ("adversarial", 0.3)  # another method starts from defaults
    assert space.experiment({"noise.sigma": 0.1, "train.lr": 0.01}).noise.sigma == pytest.approx(0.1)


def test_optuna_gives_each_method_its_own_study_and_suggests_only_its_knobs():
    from sweep.execution.studies import MethodStudies

    space = sweep_of({**SECTION, "search": {"algorithm": "optuna", "num_samples": 2}}).space
    searcher = MethodStudies(space, ["val_auc"])
    seen = []
    for i in range(space.num_groups):
        config = searcher.suggest(f"t{i}")
        seen.append(config["method.name"])
        if config["method.name"] == "adversarial":
            assert 0.05 <= config["adversarial.beta"] <= 0.5 and config["adversarial.attack_steps"] in (1, 2, 3)
        else:
            assert not any(k.startswith("adversarial.") for k in config)
        searcher.on_trial_complete(f"t{i}", {"val_auc": 0.5})
    # baseline and consistency have no random domain: one configuration per point, whatever num_samples
    assert seen == ["baseline", "consistency", "adversarial", "consistency", "adversarial"]
    assert searcher.suggest("t9") == "FINISHED"
    assert set(searcher._studies) == {"adversarial"} and len(searcher.study("adversarial").trials) == 2


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"gird": {}}, "sweep.gird: unknown key; allowed: claim, failure, grid, name, report_interval, resources"),
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
        ({**SECTION, "search": {"budget": 1}}, "sweep.search.budget: consistency has 2 grid points, more than the"),
        ({"search": {"budget": 4, "num_samples": 2}}, "sweep.search.num_samples: set either num_samples or budget"),
        (
            {**SECTION, "space": {"baseline": {"noise.sigma": {"grid": [0.1, 0.2]}}}},
            "sweep.space.baseline: baseline does not train under noise",
        ),
        ({"space": {"consistency": {"eval.samples": 3}}}, "sweep.space.consistency.eval.samples: a method's space"),
        (
            {"space": {"consistency": {"noise.sigma": {"grid": [0.1, 0.2]}}}, "search": {"metric": "val_noisy_acc"}},
            "sweep.search.metric: val_noisy_acc is measured at each trial's own noise.sigma",
        ),
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


@pytest.mark.parametrize("algorithm", ["grid", "optuna"])
def test_a_resumed_search_skips_ended_trials_and_hands_out_recorded_draws_again(algorithm: str):
    """`--resume` rebuilds the search from the trial folders: the trials that ended are not handed out,
    the others get the keys and (Optuna) the hyperparameters their group ran with before."""
    from sweep.execution.searchers import build_search

    section = {
        **SECTION,
        "space": {"adversarial": {"beta": {"loguniform": [0.05, 0.5]}}},
        "search": {"algorithm": algorithm, "num_samples": 2},
    }
    space = sweep_of(section).space
    whole = build_search(space, ["val_auc"])
    expected = [whole.suggest(f"t{i}") for i in range(space.num_trials)]
    ended = [expected[i][TRIAL_KEY] for i in (0, 1, 3)]  # group 0 whole, group 1 half
    recorded = {int(c[TRIAL_KEY][:4]): c for c in expected[:5]}  # groups 0-2 had started
    resumed = build_search(space, ["val_auc"], {key: {"val_auc": 0.5} for key in ended}, recorded)
    got = []
    while (config := resumed.suggest(f"r{len(got)}")) not in (None, "FINISHED"):
        got.append(config)
        assert len(got) <= space.num_trials
    assert [c[TRIAL_KEY] for c in got] == [c[TRIAL_KEY] for c in expected if c[TRIAL_KEY] not in ended]
    by_key = {c[TRIAL_KEY]: c for c in expected}
    for config in got[:2]:  # 0001-seed0 and 0002-seed0: groups that ran before, same values
        assert config == by_key[config[TRIAL_KEY]]


@pytest.mark.parametrize("algorithm", ["grid", "optuna"])
def test_regression_a_point_without_random_domains_never_runs_twice(algorithm: str):
    """Issue 11: optuna with num_samples 3 ran nft (no random domain) three times with identical
    configurations, and the report counted them as three seeds."""
    from sweep.execution.searchers import build_search

    section = {
        "grid": {"method.name": ["consistency", "nft"], "seed": [0, 1]},
        "space": {"consistency": {"weight": {"loguniform": [0.1, 10]}}, "nft": {"exit_hidden": 8}},
        "search": {"algorithm": algorithm, "num_samples": 3},
    }
    space = sweep_of(section).space
    searcher = build_search(space, ["val_auc"])
    configs = []
    while (config := searcher.suggest(f"t{len(configs)}")) not in (None, "FINISHED"):
        configs.append(config)
        assert len(configs) <= 20
    nft = [c for c in configs if c["method.name"] == "nft"]
    assert sorted(c["seed"] for c in nft) == [0, 1]  # one configuration, once per seed
    weights = {c["consistency.weight"] for c in configs if c["method.name"] == "consistency"}
    assert len(weights) == 3 and len(configs) == space.num_trials == (3 + 1) * 2
