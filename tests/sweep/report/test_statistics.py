"""The report's statistics against values computed by hand (t tables: t_{0.975,4} = 2.7764,
t_{0.8,4} = 0.9410, t_{1-0.05/6,4} = 3.9608)."""

import math

import pytest

from sweep.report.statistics import (
    BETTER,
    NO_DIFFERENCE,
    TOO_FEW,
    WORSE,
    detectable_difference,
    holm,
    paired_differences,
    paired_test,
    verdicts,
)


def test_paired_differences_match_seeds_and_skip_unshared():
    method = {"0": 0.9, "1": 0.8, "2": 0.7, "3": 0.5}
    reference = {"2": 0.6, "0": 0.85, "1": 0.85}
    assert paired_differences(method, reference) == pytest.approx([0.05, -0.05, 0.1])


def test_paired_test_by_hand():
    # d = 1..5: mean 3, s = sqrt(10/4) = 1.5811, s/sqrt(5) = 0.70711, t = 4.2426
    test = paired_test([1, 2, 3, 4, 5])
    assert test.n == 5
    assert test.mean == pytest.approx(3.0)
    assert test.sd == pytest.approx(1.58114, abs=1e-5)
    assert test.t == pytest.approx(4.24264, abs=1e-5)
    assert test.ci95 == pytest.approx(2.7764 * 0.70711, abs=1e-3)  # 1.9632
    assert test.p == pytest.approx(0.0132, abs=5e-4)  # two-sided, 4 dof


def test_paired_test_degenerate_cases():
    assert paired_test([0.0, 0.0, 0.0]).p == 1.0  # identical configurations: nothing to detect
    assert paired_test([0.1, 0.1, 0.1]).p < 1e-12  # a constant shift (up to rounding)
    single = paired_test([0.3])
    assert single.mean == 0.3 and math.isnan(single.p) and math.isnan(single.ci95)


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, max(0.06, 1 x 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = holm([0.02, math.nan])  # a method without a test does not count in m
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1])


def test_detectable_difference_by_hand():
    sd = math.sqrt(2.5)
    assert detectable_difference(5, sd) == pytest.approx((2.7764 + 0.9410) * sd / math.sqrt(5), abs=2e-3)  # 2.629
    assert detectable_difference(5, sd, m=3) == pytest.approx((3.9608 + 0.9410) * sd / math.sqrt(5), abs=2e-3)
    assert detectable_difference(20, sd) < detectable_difference(5, sd)  # more seeds, finer resolution
    assert math.isnan(detectable_difference(1, sd))


def test_verdicts_holm_over_methods():
    diffs = {
        "up": [0.04, 0.05, 0.06, 0.05, 0.05],  # t = 22.4: p ~ 2e-5
        "down": [-0.10, -0.12, -0.08, -0.11, -0.09],  # t = -14.1
        "flat": [0.02, -0.03, 0.01, -0.01, 0.00],
        "marginal": [1, 2, 3, 4, 5],  # p = 0.0132 alone
        "one": [0.3],
    }
    out = {v.method: v for v in verdicts(diffs)}
    assert out["up"].verdict == BETTER and out["down"].verdict == WORSE
    assert out["flat"].verdict == NO_DIFFERENCE
    assert out["one"].verdict == TOO_FEW and out["one"].n == 1
    # four tested methods: marginal is third smallest p -> x 2 = 0.0265 <= 0.05: still better
    assert out["marginal"].p_holm == pytest.approx(2 * 0.01324, abs=1e-3)
    assert out["marginal"].verdict == BETTER
    # with m = 4 the detectable difference uses alpha / 4
    assert out["flat"].detectable == pytest.approx(detectable_difference(5, out["flat"].test.sd, m=4))


def test_holm_turns_a_lone_significance_into_no_difference():
    lone = verdicts({"a": [1, 2, 3, 4, 5]})[0]
    assert lone.verdict == BETTER  # p = 0.013 <= 0.05
    many = {f"m{k}": [0.0, 0.01, -0.01, 0.02, -0.02] for k in range(4)}  # p = 1 each
    crowd = {v.method: v for v in verdicts({"a": [1, 2, 3, 4, 5], **many})}
    assert crowd["a"].p_holm == pytest.approx(5 * 0.01324, abs=2e-3)  # 0.066 > 0.05
    assert crowd["a"].verdict == NO_DIFFERENCE
