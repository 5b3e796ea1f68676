"""Unit tests of the drift test families, with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from convsim.stats.drift import (
    ScoreArrays,
    Window,
    benjamini_hochberg,
    compare_windows,
    holm,
    kitagawa_decomposition,
    newcombe_interval,
    quadratic_form_sf,
    wilson_bounds,
)
from convsim.stats.drift import _tests as t
from convsim.stats.drift._effects import mde_rate


def window(
    label: str,
    kind: str,
    values: list[float] | list[str] | NDArray[np.float64],
    *,
    name: str = "s",
    prob: float | None = None,
) -> Window:
    """A window with one conversation-level score per conversation."""
    n = len(values)
    return Window.from_arrays(
        label,
        {name: ScoreArrays(kind, np.arange(n), np.asarray(values))},  # type: ignore[arg-type]
        n_conversations=n,
        inclusion_prob=None if prob is None else np.full(n, prob),
    )


def design_of(base: NDArray[np.float64], cur: NDArray[np.float64]) -> t.Design:
    current = np.r_[np.zeros(base.size, bool), np.ones(cur.size, bool)]
    return t.make_design(current, np.zeros(current.size, np.int64), np.ones(current.size))


def only(report_findings: tuple[object, ...]) -> object:
    assert len(report_findings) == 1
    return report_findings[0]


# --- binary ---------------------------------------------------------------------------


def test_two_proportion_z_hand_computed() -> None:
    # 120/200 vs 140/200: pooled p = 0.65, SE0 = sqrt(0.65 * 0.35 * (1/200 + 1/200))
    # = 0.0476970, z = 0.10 / 0.0476970 = 2.096570, two-sided p = 0.036032.
    base = window("w1", "binary", [1.0] * 120 + [0.0] * 80)
    cur = window("w2", "binary", [1.0] * 140 + [0.0] * 60)
    f = compare_windows(base, cur, bootstrap=0).findings[0]
    assert f.test == "two-proportion z"
    assert f.statistic == pytest.approx(2.096570, abs=1e-6)
    assert f.p_value == pytest.approx(0.036032, abs=1e-6)
    assert f.effect == pytest.approx(0.10)
    # z**2 is Pearson's chi-square of the 2x2 table.
    chi = stats.chi2_contingency([[120, 80], [140, 60]], correction=False)
    assert f.statistic is not None and f.statistic**2 == pytest.approx(chi.statistic)
    assert f.p_value == pytest.approx(chi.pvalue)
    # Textbook MDE: (1.959964 + 0.841621) * 0.0476970 = 0.133628 (one primary finding,
    # so no correction). The stated MDE also lets the variances grow as the current rate
    # moves toward 50% (to q = 0.65 - d, the pooled rate to r = 0.65 - d/2): the fixed
    # point of d = 1.959964 * SE_test + 0.841621 * SE_alt with
    # SE_test = sqrt(r (1 - r) * 2/200), SE_alt = sqrt((0.65 * 0.35 + q (1 - q)) / 200).
    d = 0.0
    for _ in range(100):
        q, r = 0.65 - d, 0.65 - d / 2
        se_test = math.sqrt(r * (1 - r) * 2 / 200)
        se_alt = math.sqrt((0.65 * 0.35 + q * (1 - q)) / 200)
        d = 1.959964 * se_test + 0.841621 * se_alt
    assert d == pytest.approx(0.137818, abs=1e-6)
    assert f.mde == pytest.approx(d, abs=1e-6)


def test_newcombe_interval_matches_published_example() -> None:
    # Newcombe (1998), Table II, example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339.
    lo, hi = newcombe_interval(48 / 80, 80, 56 / 70, 70, 0.05)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)
    # The same interval comes out of compare_windows for unweighted conversation scores;
    # the windows are small, so the p-value is Boschloo's exact test.
    base = window("w1", "binary", [1.0] * 48 + [0.0] * 32)
    cur = window("w2", "binary", [1.0] * 56 + [0.0] * 14)
    f = compare_windows(base, cur, bootstrap=0).findings[0]
    assert (round(f.ci_low or 0, 4), round(f.ci_high or 0, 4)) == (0.0524, 0.3339)
    assert f.test == "Boschloo exact" and f.p_method == "exact"
    ref = stats.boschloo_exact([[56, 48], [14, 32]], alternative="two-sided").pvalue
    assert f.p_value == pytest.approx(ref, rel=1e-9)


def test_wilson_bounds_known_values() -> None:
    # 8 of 10: 0.4902 to 0.9433 (the same as convsim.stats.wilson_interval).
    lo, hi = wilson_bounds(0.8, 10, 0.05)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)


def test_turn_level_binary_is_analysed_per_conversation() -> None:
    # 40 conversations per window, 5 turns each; within a conversation all turns agree
    # (ICC 1). Turn-level there are 200 rows per window, but only 40 independent units:
    # the cluster-robust SE must be sqrt(5) times the naive turn-level SE.
    rng = np.random.default_rng(1)
    conv = np.repeat(np.arange(40), 5)
    vals = np.repeat(rng.random(40) < 0.5, 5)
    b = Window.from_arrays(
        "b",
        {"s": ScoreArrays("binary", conv, vals, np.tile(np.arange(5), 40))},
        n_conversations=40,
    )
    vals2 = np.repeat(rng.random(40) < 0.5, 5)
    c = Window.from_arrays(
        "c",
        {"s": ScoreArrays("binary", conv, vals2, np.tile(np.arange(5), 40))},
        n_conversations=40,
    )
    f = compare_windows(b, c, bootstrap=0).findings[0]
    assert f.n_baseline == 40 and f.baseline is not None and f.baseline.rows == 200
    p0, p1 = vals.mean(), vals2.mean()
    naive_se = math.sqrt(p0 * (1 - p0) / 200 + p1 * (1 - p1) / 200)
    assert f.se == pytest.approx(math.sqrt(5) * naive_se, rel=1e-9)


# --- ordinal --------------------------------------------------------------------------


def test_mann_whitney_hand_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    # baseline [1, 2, 2], current [2, 3, 3]. Pooled midranks: 1 -> 1, 2 -> 3, 3 -> 5.5.
    # R_cur = 3 + 5.5 + 5.5 = 14, U = 14 - 3*4/2 = 8, E[U] = 4.5. Ties of 3 and 2 give
    # sum(t^3 - t) = 30, Var[U] = 9/12 * (7 - 30/30) = 4.5, z = 3.5 / sqrt(4.5) = 1.649916,
    # p = 0.098960. P(cur > base) + P(tie)/2 = U / 9 = 0.888889.
    monkeypatch.setattr(t, "SMALL_N", 0)
    base, cur = np.array([1.0, 2, 2]), np.array([2.0, 3, 3])
    res, theta = t.mann_whitney_test(
        design_of(base, cur),
        np.r_[base, cur],
        permutations=99,
        rng=np.random.default_rng(0),
    )
    assert res.statistic == pytest.approx(1.649916, abs=1e-6)
    assert res.p_value == pytest.approx(0.098960, abs=1e-6)
    assert theta + 0.5 == pytest.approx(8 / 9)
    ref = stats.mannwhitneyu(cur, base, use_continuity=False, method="asymptotic")
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_ordinal_finding_matches_scipy_and_reports_levels() -> None:
    base_counts = {1: 10, 2: 20, 3: 40, 4: 20, 5: 10}
    cur_counts = {1: 5, 2: 15, 3: 40, 4: 25, 5: 15}
    base = np.repeat(list(base_counts), list(base_counts.values())).astype(float)
    cur = np.repeat(list(cur_counts), list(cur_counts.values())).astype(float)
    f = compare_windows(window("b", "ordinal", base), window("c", "ordinal", cur), bootstrap=0)
    g = f.findings[0]
    ref = stats.mannwhitneyu(cur, base, use_continuity=False, method="asymptotic")
    assert g.test == "Mann-Whitney" and g.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    # Mean levels 3.00 and 3.30: the effect is +0.30 levels.
    assert g.effect == pytest.approx(0.30)
    chi = stats.chi2_contingency([list(base_counts.values()), list(cur_counts.values())])
    sec = {s.test: s for s in g.secondary}
    assert sec["chi-square on levels"].statistic == pytest.approx(chi.statistic)
    assert sec["chi-square on levels"].p_value == pytest.approx(chi.pvalue)
    assert g.current is not None and g.current.distribution["5"] == pytest.approx(0.15)


# --- categorical ----------------------------------------------------------------------


def test_chi_square_hand_computed() -> None:
    # baseline a/b/c = 30/50/20, current 45/40/15. Expected per row 37.5/45/17.5, so
    # X^2 = 2 * (56.25/37.5 + 25/45 + 6.25/17.5) = 4.825397 on 2 df, p = exp(-X^2/2)
    # = 0.089573. It is a two-sample test: goodness of fit against the baseline counts
    # would give a different, anti-conservative value.
    base = ["a"] * 30 + ["b"] * 50 + ["c"] * 20
    cur = ["a"] * 45 + ["b"] * 40 + ["c"] * 15
    f = compare_windows(
        window("b", "categorical", base), window("c", "categorical", cur), bootstrap=0
    ).findings[0]
    assert f.test == "chi-square" and f.df == 2
    assert f.statistic == pytest.approx(4.825397, abs=1e-6)
    assert f.p_value == pytest.approx(0.089573, abs=1e-6)
    gof = stats.chisquare([45, 40, 15], [30, 50, 20]).statistic
    assert gof != pytest.approx(f.statistic)
    # The largest share change is category a: +15 points.
    assert f.effect_label == "a" and f.effect == pytest.approx(0.15)


def test_sparse_table_uses_permutations() -> None:
    base = ["x"] * 60 + ["y"] * 38 + ["rare"] * 2
    cur = ["x"] * 50 + ["y"] * 50
    f = compare_windows(
        window("b", "categorical", base), window("c", "categorical", cur), bootstrap=0
    ).findings[0]
    assert f.p_method == "permutation" and 0.0 < (f.p_value or 0) <= 1.0


# --- continuous -----------------------------------------------------------------------


def test_cramer_von_mises_statistic_hand_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    # x = [1, 3], y = [2, 4]: ECDF differences at 1, 2, 3, 4 are .5, 0, .5, 0, so
    # T = (n m / N) * mean(diff^2) = 1 * 0.5 / 4 = 0.125 (scipy agrees).
    monkeypatch.setattr(t, "SMALL_N", 0)
    base, cur = np.array([1.0, 3.0]), np.array([2.0, 4.0])
    res = t.cvm_test(
        design_of(base, cur), np.r_[base, cur], permutations=99, rng=np.random.default_rng(0)
    )
    assert res.statistic == pytest.approx(0.125)
    assert stats.cramervonmises_2samp(base, cur).statistic == pytest.approx(0.125)


def test_cramer_von_mises_matches_scipy_without_ties() -> None:
    rng = np.random.default_rng(3)
    base, cur = rng.normal(size=120), rng.normal(0.3, 1.0, size=150)
    # Round to 40 distinct values per window, so every value is its own cell.
    base = np.round(base * 8) / 8 + rng.random(120) * 1e-3
    cur = np.round(cur * 8) / 8 + rng.random(150) * 1e-3
    f = compare_windows(window("b", "continuous", base), window("c", "continuous", cur))
    ref = stats.cramervonmises_2samp(cur, base, method="asymptotic")
    g = f.findings[0]
    # 270 distinct values exceed the 50 cells, so the statistic is the binned one;
    # it stays within a few percent of the exact one and the p-values agree closely.
    assert g.statistic == pytest.approx(ref.statistic, rel=0.05)
    assert g.p_value == pytest.approx(ref.pvalue, abs=0.01)


def test_quadratic_form_tail_reproduces_known_distributions() -> None:
    # chi-square(k) is the sum of k unit weights.
    for k, x in ((2, 6.0), (5, 11.07), (20, 31.41)):
        assert quadratic_form_sf(x, np.ones(k)) == pytest.approx(stats.chi2.sf(x, k), rel=0.01)
    # The limiting Cramér-von Mises law has weights 1/(j pi)^2; its 95% point is 0.46136.
    lam = 1.0 / (np.arange(1, 5000) * np.pi) ** 2
    assert quadratic_form_sf(0.46136, lam) == pytest.approx(0.05, abs=5e-4)
    assert quadratic_form_sf(0.74346, lam) == pytest.approx(0.01, abs=3e-4)
    assert quadratic_form_sf(0.0, lam) == 1.0


def test_welch_t_on_logs_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    base = rng.lognormal(7.0, 0.5, 150)
    cur = rng.lognormal(7.1, 0.6, 130)
    f = compare_windows(window("b", "continuous", base), window("c", "continuous", cur))
    sec = {s.test: s for s in f.findings[0].secondary}["Welch t on logs"]
    ref = stats.ttest_ind(np.log(cur), np.log(base), equal_var=False)
    assert sec.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert sec.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert sec.effect == pytest.approx(math.exp(np.log(cur).mean() - np.log(base).mean()))


def test_median_effect_on_request() -> None:
    base = np.arange(1.0, 201.0)
    cur = np.arange(11.0, 211.0)
    f = compare_windows(
        window("b", "continuous", base),
        window("c", "continuous", cur),
        effect_measures={"s": "median"},
        bootstrap=0,
    ).findings[0]
    assert f.effect_name == "difference in median" and f.effect == pytest.approx(10.0)
    assert f.ci_low is not None and f.ci_high is not None and f.ci_low < 10.0 < f.ci_high


# --- multiple testing and decomposition -----------------------------------------------


def test_holm_and_bh_hand_computed() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.06).
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: 0.005*4/1 = 0.02, 0.01*4/2 = 0.02, 0.03*4/3 = 0.04, 0.04*4/4 = 0.04.
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg(p) == pytest.approx(list(stats.false_discovery_control(p)))
    assert holm([]) == [] and benjamini_hochberg([]) == []


def test_kitagawa_hand_computed() -> None:
    # Shares .5/.5 -> .3/.7, means .8/.6 -> .7/.5. Total = .56 - .70 = -.14;
    # mix = -.2 * .75 + .2 * .55 = -.04; within = .4 * -.1 + .6 * -.1 = -.10.
    d = kitagawa_decomposition([0.5, 0.5], [0.8, 0.6], [0.3, 0.7], [0.7, 0.5])
    assert (d.total, d.mix, d.within) == pytest.approx((-0.14, -0.04, -0.10))
    # A cohort missing from one window is all mix.
    d = kitagawa_decomposition([1.0, 0.0], [0.8, math.nan], [0.5, 0.5], [0.8, 0.4])
    assert (d.total, d.mix, d.within) == pytest.approx((-0.2, -0.2, 0.0))


def test_the_pooled_variance_grows_under_a_change_as_shift_cross_says() -> None:
    # Users with three conversations in each window and a strong user effect. Under a
    # change the pooled null variance sees every unit of a user off the pooled mean the
    # same way; var0 = var (own means) + d^2 / (2n) (the classical pooling term) + K d^2.
    rng = np.random.default_rng(1)
    users, m = 3000, 3
    user = np.repeat(np.arange(users), 2 * m)
    current = np.tile(np.r_[np.zeros(m, bool), np.ones(m, bool)], users)
    effect = rng.normal(0.0, 1.2, users)[user]
    draw = rng.random(user.size)
    y = (draw < 1 / (1 + np.exp(-(1.0 + effect - 0.5 * current)))).astype(float)
    turns = np.ones(user.size)
    strata = np.zeros(user.size, np.int64)
    clustered = t.make_design(current, strata, np.ones(user.size), cluster=user)
    c = t.contrast(clustered, y, turns, ddof=0, small_sample=False)
    predicted = c.var + c.delta**2 / (2 * users * m) + c.shift_cross * c.delta**2
    assert c.shift_cross * c.delta**2 > 0.05 * c.var0  # the term matters here
    assert abs(c.var0 - predicted) < 0.02 * c.var0
    plain = t.contrast(t.make_design(current, strata, np.ones(user.size)), y, turns, ddof=0,
                       small_sample=False)  # fmt: skip
    assert plain.shift_cross == 0.0


def test_the_mde_of_a_rate_allows_for_the_clusters_shift_term() -> None:
    rates = ((0.73, 0.0005), (0.73, 0.0005))
    without = mde_rate(0.03, rates, 0.01)
    with_clusters = mde_rate(0.03, rates, 0.01, shift_cross=0.05)
    # The test's standard error at the change: sqrt(se0^2 + K d^2), not se0.
    assert with_clusters > without
    assert with_clusters > 2.576 * math.sqrt(0.03**2 + 0.05 * with_clusters**2)
