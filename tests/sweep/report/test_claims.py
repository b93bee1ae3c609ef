"""Claims: the `claim:` block's schema and checks, the verdict of a claim from per-seed values (hand
computed), and the shipped claim configs (one per seed paper, >= 5 seeds, equal budgets)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from sweep.config import Claim, ConfigError, build_sweep, load_sweep
from sweep.report.verdicts import judge, outcome

ROOT = Path(__file__).resolve().parents[3]
CLAIMS = sorted((ROOT / "configs" / "claims").glob("*.yaml"))
CLAIM = {
    "paper": "P",
    "statement": "a beats b",
    "paper_setting": "s",
    "setting": "digits",
    "comparisons": [{"method": "a", "reference": "b", "metric": "acc", "scale": 0.2}],
}


def values(a: list[float], b: list[float], key: str = "acc_at_0.2") -> dict:
    return {"a": {key: dict(enumerate(a))}, "b": {key: dict(enumerate(b))}}


def test_a_claim_holds_fails_or_is_not_shown_by_the_paired_verdict():
    claim = Claim.model_validate(CLAIM)
    # d = 0.01..0.05: mean 0.03, p = 0.0132 (see test_verdicts): better, as claimed
    judged = judge(claim, values([0.91, 0.92, 0.93, 0.94, 0.95], [0.9] * 5))
    assert judged[0][1].verdict == "better" and judged[0][2] and outcome(judged) == "holds"
    judged = judge(claim, values([0.89, 0.88, 0.87, 0.86, 0.85], [0.9] * 5))
    assert judged[0][1].verdict == "worse" and outcome(judged) == "does not hold"
    judged = judge(claim, values([0.91, 0.89, 0.90, 0.92, 0.88], [0.9] * 5))
    assert judged[0][1].verdict == "no detectable difference" and outcome(judged) == "not shown"


def test_holm_runs_over_the_claims_comparisons():
    raw = copy.deepcopy(CLAIM)
    same = {"method": "a", "reference": "b", "metric": "auc", "expected": "no detectable difference"}
    raw["comparisons"].append(same)
    claim = Claim.model_validate(raw)
    data = values([0.91, 0.92, 0.93, 0.94, 0.95], [0.9] * 5)
    data["a"]["auc"] = dict(enumerate([0.80, 0.81, 0.79, 0.80, 0.80]))
    data["b"]["auc"] = dict(enumerate([0.80] * 5))
    (_, acc, ok_acc), (_, auc, ok_auc) = judge(claim, data)
    assert acc.p_holm == pytest.approx(2 * 0.01324, abs=1e-3) and acc.verdict == "better"  # 2 x p, still <= 0.05
    assert auc.verdict == "no detectable difference" and ok_acc and ok_auc


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"comparisons": [{"method": "magic", "reference": "baseline", "scale": 0.1}]}, "0.method: 'magic' is not"),
        ({"comparisons": [{"method": "consistency", "reference": "baseline", "scale": 0.3}]}, "0.scale: acc needs"),
        ({"comparisons": []}, "sweep.claim.comparisons: List should have at least 1 item"),
        ({"verdict": "holds"}, "sweep.claim.verdict: unknown key"),
    ],
)
def test_bad_claims_fail_in_one_line(change: dict, expected: str):
    base = {"data": {"name": "digits"}, "model": {"name": "mlp"}, "eval": {"scales": [0.0, 0.1]}}
    section = {"grid": {"method.name": ["baseline", "consistency"]}, "claim": {**CLAIM, **change}}
    with pytest.raises(ConfigError) as info:
        build_sweep(base, section, "t")
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_one_claim_config_per_seed_paper():
    assert [p.stem for p in CLAIMS] == ["buechel2022", "correctnet2023", "hou2024", "nft2023"]


@pytest.mark.parametrize("path", CLAIMS, ids=[p.stem for p in CLAIMS])
def test_claim_configs_are_valid_sweeps_with_five_seeds_and_equal_budgets(path: Path):
    cfg = load_sweep(path)
    claim = cfg.section.claim
    assert claim is not None and cfg.section.tracking.experiment == "claims"
    space = cfg.space
    assert len(space.seeds) >= 5
    tuned = {n for m, n in space.budgets().items() if space.domains(m)}
    assert len(tuned) == 1  # every method with knobs gets the same budget
    for c in claim.comparisons:  # the claim's scale is the base training scale (picked from the baseline)
        assert c.metric == "auc" or c.scale == pytest.approx(cfg.experiment.noise.sigma)
