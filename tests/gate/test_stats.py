"""The gate's statistics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convsim.gate import (
    EXIT_CODES,
    ExperimentModel,
    bootstrap_bounds,
    compare_counts,
    exact_bootstrap_bounds,
    expanded_level,
    mcnemar_exact,
    population_rate,
    solve_intercept,
)


def test_mcnemar_exact_by_hand() -> None:
    # 5 worse, 0 better: P(X >= 5), X ~ Bin(5, 1/2) = 1/32; two-sided doubles it.
    assert mcnemar_exact(5, 0) == pytest.approx(1 / 32)
    assert mcnemar_exact(5, 0, alternative="two-sided") == pytest.approx(1 / 16)
    # 3 worse, 1 better: P(X >= 3 | n=4) = (4 + 1) / 16.
    assert mcnemar_exact(3, 1) == pytest.approx(5 / 16)
    # Better than worse: the one-sided p is large, P(X >= 1 | n=4) = 15/16.
    assert mcnemar_exact(1, 3) == pytest.approx(15 / 16)
    assert mcnemar_exact(2, 2, alternative="two-sided") == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar_exact(-1, 2)


def test_rates_delta_and_discordance_by_hand() -> None:
    # Case 1: 2/2 vs 1/2 (better); case 2: 0/1 vs 1/1 (worse); case 3: 1/2 vs 1/2 (same).
    cmp = compare_counts([2, 0, 1], [2, 1, 2], [1, 1, 1], [2, 1, 2], max_regression=5)
    g = cmp.group("all")
    assert g.candidate_rate == pytest.approx((1 + 0 + 0.5) / 3)
    assert g.baseline_rate == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert g.delta == pytest.approx((0.5 - 1 + 0) / 3)
    assert (g.worse, g.better) == (1, 1)
    assert g.p_worse == pytest.approx(0.75)
    assert (g.candidate_trials, g.baseline_trials) == (5, 5)
    assert g.low <= g.delta <= g.high


def test_case_bootstrap_matches_brute_force_resampling() -> None:
    # The multinomial shortcut must give the same distribution as resampling cases
    # (with the two pseudo-cases appended).
    rng = np.random.default_rng(5)
    d = rng.choice([-1, -2 / 3, -1 / 3, 0, 1 / 3, 2 / 3, 1], 150).astype(float)
    lo, hi = bootstrap_bounds(
        d, low_level=0.05, high_level=0.01, resamples=40_000, rng=np.random.default_rng(1)
    )
    aug = np.concatenate([d, [1.0, -1.0]])
    idx = np.random.default_rng(2).integers(0, aug.size, size=(40_000, aug.size))
    ref_lo, ref_hi = np.quantile(aug[idx].mean(axis=1), [0.05, 0.99])
    se = aug.std() / math.sqrt(aug.size)
    assert lo == pytest.approx(ref_lo, abs=0.05 * se)
    assert hi == pytest.approx(ref_hi, abs=0.1 * se)


def test_expanded_level_by_hand() -> None:
    # n = 14: t_13 upper 5% point 1.7709, times sqrt(14/13) = 1.8377; Phi(-1.8377) = 0.0331.
    assert expanded_level(0.05, 14) == pytest.approx(0.0331, abs=5e-4)
    # Large samples: the plain level.
    assert expanded_level(0.05, 100_000) == pytest.approx(0.05, abs=1e-4)
    assert expanded_level(0.05, 1) == 0.05


def test_exact_bootstrap_matches_resampling_and_falls_back_on_a_huge_lattice() -> None:
    rng = np.random.default_rng(9)
    t = rng.integers(1, 4, 120)
    cp, bp = rng.binomial(t, 0.6), rng.binomial(t, 0.5)
    # Differences in sixths (lcm of 1, 2, 3).
    nums = cp * (6 // t) - bp * (6 // t)
    exact = exact_bootstrap_bounds(nums, 6, low_level=0.05, high_level=0.01)
    assert exact is not None
    lo, hi = bootstrap_bounds(
        nums / 6,
        low_level=0.05,
        high_level=0.01,
        resamples=100_000,
        rng=np.random.default_rng(0),
    )
    step = 1 / (6 * 122)  # one lattice step of the mean (120 + 2 cases)
    assert exact[0] == pytest.approx(lo, abs=2 * step)
    assert exact[1] == pytest.approx(hi, abs=2 * step)
    assert compare_counts(cp, t, bp, t, max_regression=5).group("all").method == "exact"
    # Distinct prime trial counts make the lattice too fine to convolve: resample.
    primes = [7, 11, 13, 17, 19, 23, 29, 31, 37, 41]
    tp = np.array(primes * 30)
    fallback = compare_counts(tp // 2, tp, tp // 2, tp, max_regression=5).group("all")
    assert fallback.method == "resampled"
    assert fallback.low < 0 < fallback.high


def test_identical_runs_on_few_cases_never_pass() -> None:
    # Both runs pass all three cases. A plain bootstrap gives a zero-width interval and
    # would pass; three cases cannot rule out a 10-point drop.
    cmp = compare_counts([1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1], max_regression=10)
    assert cmp.verdict == "inconclusive"
    assert cmp.group("all").low < -0.1


def test_identical_runs_on_many_cases_pass_a_loose_margin() -> None:
    n = 400
    ones = np.ones(n, dtype=np.int64)
    cmp = compare_counts(ones, ones, ones, ones, max_regression=5)
    assert cmp.verdict == "pass" and cmp.exit_code == 0
    g = cmp.group("all")
    assert g.delta == 0 and -0.05 < g.low < 0 < g.high


def test_three_cases_all_worse_is_not_a_regression() -> None:
    cmp = compare_counts([0, 0, 0], [1, 1, 1], [1, 1, 1], [1, 1, 1], max_regression=1)
    assert cmp.verdict == "inconclusive"


def test_clear_drop_is_a_regression_with_exit_code_1() -> None:
    # 200 cases; the candidate loses 60 that the baseline passed.
    base = np.ones(200, dtype=np.int64)
    cand = base.copy()
    cand[:60] = 0
    cmp = compare_counts(cand, np.ones(200, dtype=np.int64), base, base, max_regression=5)
    g = cmp.group("all")
    assert g.delta == pytest.approx(-0.3)
    assert g.verdict == "regression" and cmp.exit_code == EXIT_CODES["regression"] == 1
    assert g.high < -0.05 and g.plan is None
    assert g.p_worse == pytest.approx(2.0**-60)


def test_large_drop_on_few_broken_cases_is_a_regression_despite_the_sign_test() -> None:
    # 30 cases break completely (3/3 -> 0/3) while 30 others gain a trial (1/3 -> 2/3):
    # as many cases got better as worse, but the pass rate fell by a third.
    cp = [0] * 30 + [2] * 30
    bp = [3] * 30 + [1] * 30
    three = [3] * 60
    cmp = compare_counts(cp, three, bp, three, max_regression=5)
    g = cmp.group("all")
    assert (g.worse, g.better) == (30, 30) and g.p_worse > 0.5
    assert g.delta == pytest.approx(-1 / 3)
    assert g.verdict == "regression"


def test_groups_bonferroni_and_gate_verdict() -> None:
    # Two verticals: "a" unchanged on many cases, "b" clearly worse.
    n = 300
    cp = np.ones(2 * n, dtype=np.int64)
    cp[n : n + 120] = 0
    t = np.ones(2 * n, dtype=np.int64)
    tags = {"vertical": ["a"] * n + ["b"] * n}
    cmp = compare_counts(cp, t, np.ones(2 * n, dtype=np.int64), t, max_regression=5, tags=tags)
    assert [g.label for g in cmp.groups] == ["all", "vertical=a", "vertical=b"]
    assert cmp.alpha_regression == pytest.approx(0.05 / 3)
    assert cmp.group("vertical=a").verdict == "pass"
    assert cmp.group("vertical=b").verdict == "regression"
    assert cmp.verdict == "regression"
    # Enough resamples that about 50 fall beyond the regression bound.
    assert cmp.resamples >= 50 / cmp.alpha_regression


def test_inconclusive_group_gets_a_plan_that_decides() -> None:
    rng = np.random.default_rng(3)
    n, trials = 80, 3
    p = rng.uniform(0.2, 0.9, n)
    t = np.full(n, trials)
    cp, bp = rng.binomial(t, p), rng.binomial(t, p)
    cmp = compare_counts(cp, t, bp, t, max_regression=5, seed=1)
    g = cmp.group("all")
    assert g.verdict == "inconclusive" and g.plan is not None
    assert g.plan.cases_needed is not None and g.plan.more_cases is not None
    assert g.plan.cases_needed == n + g.plan.more_cases
    assert "more cases" in g.plan.note
    # Scaling the same data up to the planned size decides it (the plan's assumption:
    # the estimate and the spread stay as observed).
    k = math.ceil(g.plan.cases_needed / n) + 1
    big = compare_counts(
        np.tile(cp, k), np.tile(t, k), np.tile(bp, k), np.tile(t, k), max_regression=5, seed=1
    )
    assert big.group("all").verdict == g.plan.toward


def test_plan_on_the_margin_and_trials_projection() -> None:
    # Delta exactly -5 pp with margin 5: no sample size decides it.
    cp = [0] * 5 + [1] * 95
    ones = [1] * 100
    g = compare_counts(cp, ones, ones, ones, max_regression=5).group("all")
    assert g.verdict == "inconclusive" and g.plan is not None
    assert g.plan.toward is None and g.plan.more_cases is None

    # Cases that are all alike (p = 0.6 in both runs): all the spread is trial noise, so
    # more trials on the same cases decide about as cheaply as more cases.
    rng = np.random.default_rng(1)
    t = np.full(60, 2)
    cp2, bp2 = rng.binomial(t, 0.6), rng.binomial(t, 0.6)
    g2 = compare_counts(cp2, t, bp2, t, max_regression=10).group("all")
    assert g2.verdict == "inconclusive" and g2.plan is not None
    plan = g2.plan
    assert plan.toward == "pass"
    assert plan.trials_per_case is not None and plan.trials_per_case > 2
    assert plan.more_conversations == plan.trials_per_case * 60 * 2 - 240
    assert plan.cases_needed is not None
    by_cases = plan.cases_needed * 2 * 2 - 240
    assert 0.5 < plan.more_conversations / by_cases < 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_regression": -1}, "percentage points"),
        ({"max_regression": 1, "alpha": 0.5}, "alpha"),
        ({"max_regression": 1, "resamples": 10}, "resamples"),
        ({"max_regression": 1, "tags": {"v": ["a"]}}, "values for 2 cases"),
    ],
)
def test_invalid_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_counts([1, 0], [1, 1], [1, 1], [1, 1], **kwargs)  # type: ignore[arg-type]


def test_invalid_counts() -> None:
    with pytest.raises(ValueError, match="at least one counted trial"):
        compare_counts([0], [0], [0], [1], max_regression=1)
    with pytest.raises(ValueError, match="between 0 and the number of trials"):
        compare_counts([2], [1], [0], [1], max_regression=1)
    with pytest.raises(ValueError, match="one count per case"):
        compare_counts([1, 1], [1], [1], [1], max_regression=1)
    with pytest.raises(ValueError, match="no cases"):
        compare_counts([], [], [], [], max_regression=1)
    with pytest.raises(ValueError, match="integer counts"):
        compare_counts([0.5], [1], [1], [1], max_regression=1)


def test_experiment_model_hits_the_requested_true_rates() -> None:
    a = solve_intercept(0.7, 1.58)
    assert population_rate(a, 1.58) == pytest.approx(0.7, abs=1e-9)
    model = ExperimentModel({"x": 0.7, "y": 0.4}, {"x": 5.0})
    rates = model.true_rates()
    assert rates["x"] == pytest.approx((0.65, 0.70), abs=1e-9)
    assert rates["y"] == pytest.approx((0.40, 0.40), abs=1e-9)
    # And the sampled pass rates agree with them.
    pair = model.draw(np.random.default_rng(0), 20_000, 1)
    x = np.array(pair.tags["vertical"]) == "x"
    assert pair.candidate_passes[x].mean() == pytest.approx(0.65, abs=0.015)
    assert pair.baseline_passes[x].mean() == pytest.approx(0.70, abs=0.015)
    with pytest.raises(ValueError, match="not in"):
        ExperimentModel({"x": 0.03}, {"x": 5.0})
