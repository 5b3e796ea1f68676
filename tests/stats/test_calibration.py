from __future__ import annotations

import math
from collections.abc import Sequence
from typing import get_args

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from scipy.stats import binomtest

from convsim.stats import (
    KappaWeights,
    Label,
    binary_agreement,
    calibrate,
    cohen_kappa,
    corrected_pass_rate,
    ppi_mean,
    rogan_gladen,
    weighted_kappa,
    wilson_interval,
)
from convsim.trace import Score, ScoreKind, ScoreSource

# --- 2x2 agreement ---------------------------------------------------------------------


def table(tp: int, fn: int, fp: int, tn: int) -> tuple[list[bool], list[bool]]:
    """Judge and human verdicts with the given counts (judge first)."""
    judge = [True] * tp + [False] * fn + [True] * fp + [False] * tn
    human = [True] * (tp + fn) + [False] * (fp + tn)
    return judge, human


def test_binary_agreement_hand_computed() -> None:
    # tp 40, fn 10, fp 5, tn 45: TPR 40/50 = 0.8, TNR 45/50 = 0.9, accuracy 85/100.
    # Kappa: po = 0.85; the judge passes 45%, the human 50%, so
    # pe = 0.45 * 0.50 + 0.55 * 0.50 = 0.50 and kappa = (0.85 - 0.50) / (1 - 0.50) = 0.70.
    a = binary_agreement(*table(40, 10, 5, 45))
    assert (a.tp, a.fn, a.fp, a.tn, a.n, a.n_pos, a.n_neg) == (40, 10, 5, 45, 100, 50, 50)
    assert a.tpr.value == pytest.approx(0.8) and a.tpr.n == 50
    assert a.tnr.value == pytest.approx(0.9) and a.tnr.n == 50
    assert a.accuracy.value == pytest.approx(0.85) and a.accuracy.n == 100
    assert a.kappa.value == pytest.approx(0.70)
    assert a.judge_pass_rate == pytest.approx(0.45)
    assert a.human_pass_rate == pytest.approx(0.50)
    ci = binomtest(40, 50).proportion_ci(0.95, method="wilson")
    assert a.tpr.low == pytest.approx(ci.low) and a.tpr.high == pytest.approx(ci.high)


def test_wilson_interval_known_values() -> None:
    # 8 of 10 at 95%: the Wilson interval is 0.4902 to 0.9433.
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    # At 0 successes the interval still has width: 0 to 0.2775.
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        wilson_interval(3, 2)


def test_cohen_kappa_textbook_table() -> None:
    # Two readers, 50 applications (the standard worked example for Cohen's kappa):
    #               B yes  B no
    #     A yes       20      5
    #     A no        10     15
    # po = (20 + 15) / 50 = 0.70. A says yes 25/50 = 0.5, B says yes 30/50 = 0.6, so
    # pe = 0.5 * 0.6 + 0.5 * 0.4 = 0.50 and kappa = (0.70 - 0.50) / (1 - 0.50) = 0.40.
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    k = cohen_kappa(a, b)
    assert k.value == pytest.approx(0.40) and k.n == 50 and k.reason is None
    # Listing a category nobody used leaves unweighted kappa unchanged.
    assert cohen_kappa(a, b, ["yes", "no", "maybe"]).value == pytest.approx(0.40)


def test_weighted_kappa_hand_computed() -> None:
    # Pairs (judge, human) on a 1-3 scale: (1,1) (2,2) (3,3) (3,3) (1,2) (3,1).
    # Counts: row (judge) totals r = [2, 1, 3], column (human) totals c = [2, 2, 2], n = 6.
    # Unweighted: po = 4/6, pe = (2*2 + 1*2 + 3*2) / 36 = 1/3, kappa = (1/3) / (2/3) = 0.5.
    # Quadratic weights (i - j)^2: observed cost = 1 (1 vs 2) + 4 (3 vs 1) = 5. Expected cost
    # = sum w_ij r_i c_j / n = 2 * (2*5 + 1*2 + 3*5) / 6 = 9 (row sums of w are 5, 2, 5).
    # kappa_w = 1 - 5/9 = 4/9.
    # Linear weights |i - j|: observed 1 + 2 = 3; expected 2 * (2*3 + 1*2 + 3*3) / 6 = 17/3;
    # kappa_w = 1 - 9/17 = 8/17.
    judge = [1, 2, 3, 3, 1, 3]
    human = [1, 2, 3, 3, 2, 1]
    assert cohen_kappa(judge, human).value == pytest.approx(0.5)
    assert weighted_kappa(judge, human, [1, 2, 3]).value == pytest.approx(4 / 9)
    assert weighted_kappa(judge, human, [1, 2, 3], "linear").value == pytest.approx(8 / 17)


def test_weighted_kappa_uses_scale_positions() -> None:
    # With a gap in the scale the missing point must still count as a step.
    judge, human = [1, 5, 2, 4], [1, 5, 4, 2]
    full = weighted_kappa(judge, human, [1, 2, 3, 4, 5]).value
    squeezed = weighted_kappa(judge, human, [1, 2, 4, 5]).value
    assert full is not None and squeezed is not None and full != squeezed


def test_invalid_agreement_input_raises() -> None:
    with pytest.raises(ValueError, match="must pair up: 2 judge vs 1 human"):
        binary_agreement([True, False], [True])
    with pytest.raises(ValueError, match="judge label 0 must be True or False"):
        binary_agreement([1], [True])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="human label 4 is not one of the categories"):
        weighted_kappa([1], [4], [1, 2, 3])
    with pytest.raises(ValueError, match="weights must be"):
        weighted_kappa([1], [1], [1, 2], "cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="categories must be distinct"):
        cohen_kappa([1], [1], [1, 1])


def test_degenerate_input_reports_reasons() -> None:
    # Every item passed by both: TNR has no denominator and kappa has no chance baseline.
    a = binary_agreement([True] * 5, [True] * 5)
    assert a.tpr.value == 1.0
    assert a.tnr.value is None and a.tnr.reason is not None and "TNR" in a.tnr.reason
    assert a.kappa.value is None and a.kappa.reason is not None
    assert "same label" in a.kappa.reason
    empty = binary_agreement([], [])
    assert empty.tpr.value is None and empty.accuracy.value is None and empty.n == 0
    assert empty.kappa.reason == "no paired labels"
    assert empty.judge_pass_rate is None and empty.human_pass_rate is None
    assert weighted_kappa([3], [3], [3]).reason == "weighted kappa needs at least two categories"


labels3 = st.sampled_from(["a", "b", "c"])
paired = st.integers(min_value=0, max_value=30).flatmap(
    lambda n: st.tuples(
        st.lists(labels3, min_size=n, max_size=n), st.lists(labels3, min_size=n, max_size=n)
    )
)
bool_pairs = st.integers(min_value=0, max_value=30).flatmap(
    lambda n: st.tuples(
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)


weight_kinds = st.sampled_from(list(get_args(KappaWeights)))


@given(paired, weight_kinds)
def test_kappas_stay_in_range(pair: tuple[list[str], list[str]], w: KappaWeights) -> None:
    judge, human = pair
    for k in (
        cohen_kappa(judge, human),
        weighted_kappa(judge, human, ["a", "b", "c"], w),
    ):
        assert k.n == len(judge)
        if k.value is None:
            assert k.reason
        else:
            assert -1.0 <= k.value <= 1.0


@given(st.lists(labels3, min_size=1, max_size=30), weight_kinds)
def test_perfect_agreement_gives_kappa_one(labels: list[str], w: KappaWeights) -> None:
    k = weighted_kappa(labels, labels, ["a", "b", "c"], w)
    u = cohen_kappa(labels, labels)
    if len(set(labels)) == 1:  # one label throughout: chance agreement is total
        assert k.value is None and u.value is None and k.reason and u.reason
    else:
        assert k.value == 1.0 and u.value == 1.0


@given(bool_pairs)
def test_binary_agreement_never_raises_on_valid_input(pair: tuple[list[bool], list[bool]]) -> None:
    judge, human = pair
    a = binary_agreement(judge, human)
    assert a.n == len(judge)
    for e in (a.tpr, a.tnr, a.accuracy, a.kappa):
        assert (e.value is None) == bool(e.reason)
        if e.value is not None:
            assert -1.0 <= e.value <= 1.0
        if e.low is not None and e.high is not None and e.value is not None:
            assert 0.0 <= e.low <= e.value <= e.high <= 1.0


# --- Rogan-Gladen ----------------------------------------------------------------------


def test_rogan_gladen_formula() -> None:
    # True rate 3/7 with TPR 0.9, TNR 0.8: the judge passes 0.9 * 3/7 + 0.2 * 4/7 = 0.5.
    assert rogan_gladen(0.5, 0.9, 0.8) == pytest.approx(3 / 7)
    assert rogan_gladen(0.1, 0.9, 0.8) == pytest.approx(-0.1 / 0.7)  # unclipped
    assert rogan_gladen(0.5, 0.5, 0.5) is None
    r = corrected_pass_rate(0.5, 1000, 0.9, 0.8, 200, 200)
    assert r.estimate == pytest.approx(3 / 7)
    assert r.naive == 0.5 and r.youden == pytest.approx(0.7) and not r.clipped
    assert r.low is not None and r.high is not None and r.low < 3 / 7 < r.high
    assert r.method == "simulation" and r.reason is None


def test_corrected_rate_is_clipped() -> None:
    # p_obs 0.18 is below 1 - TNR = 0.2, which even a true rate of 0 would give.
    r = corrected_pass_rate(0.18, 1000, 0.9, 0.8, 200, 200)
    assert rogan_gladen(0.18, 0.9, 0.8) == pytest.approx(-0.02 / 0.7)
    assert r.estimate == 0.0 and r.clipped
    assert r.low == 0.0 and r.high is not None and 0.0 < r.high < 0.15


def test_delta_interval_hand_computed() -> None:
    # p_obs 0.5 (n 1000), TPR 0.9 (n 200), TNR 0.8 (n 200), estimate 3/7, J = 0.7:
    # Var = [0.25/1000 + (3/7)^2 * 0.09/200 + (4/7)^2 * 0.16/200] / 0.49.
    var = (0.25 / 1000 + (3 / 7) ** 2 * 0.09 / 200 + (4 / 7) ** 2 * 0.16 / 200) / 0.49
    half = 1.959963984540054 * math.sqrt(var)
    r = corrected_pass_rate(0.5, 1000, 0.9, 0.8, 200, 200, method="delta")
    assert r.low == pytest.approx(3 / 7 - half) and r.high == pytest.approx(3 / 7 + half)


def test_simulation_interval_is_seeded() -> None:
    a = corrected_pass_rate(0.4, 500, 0.85, 0.8, 60, 40, seed=3)
    assert a == corrected_pass_rate(0.4, 500, 0.85, 0.8, 60, 40, seed=3)
    assert a != corrected_pass_rate(0.4, 500, 0.85, 0.8, 60, 40, seed=4)


def test_perfect_judge_on_few_labels_keeps_uncertainty() -> None:
    # 10 of 10 right on each side says little about the judge; the delta method collapses
    # to the p_obs error alone, the simulation interval does not.
    sim = corrected_pass_rate(0.5, 1000, 1.0, 1.0, 10, 10)
    delta = corrected_pass_rate(0.5, 1000, 1.0, 1.0, 10, 10, method="delta")
    assert sim.low is not None and sim.high is not None
    assert delta.low is not None and delta.high is not None
    assert sim.high - sim.low > 2 * (delta.high - delta.low)


@pytest.mark.parametrize(("tpr", "tnr"), [(0.5, 0.5), (0.4, 0.55), (0.0, 1.0)])
def test_judge_no_better_than_chance_has_no_correction(tpr: float, tnr: float) -> None:
    r = corrected_pass_rate(0.5, 1000, tpr, tnr, 100, 100)
    assert r.estimate is None and r.low is None and r.high is None
    assert r.reason is not None and "no better than chance" in r.reason


def test_judge_indistinguishable_from_chance_gets_full_interval() -> None:
    # J = 0.1 on 20 labels each side: many plausible judges are no better than chance.
    r = corrected_pass_rate(0.5, 1000, 0.6, 0.5, 20, 20)
    assert r.estimate is not None
    assert (r.low, r.high) == (0.0, 1.0)
    assert r.reason is not None and "cannot tell this judge from chance" in r.reason


def test_corrected_rate_input_checks() -> None:
    assert corrected_pass_rate(0.5, 100, 0.9, 0.9, 0, 10).reason == "n_pos is 0: no " + (
        "human-labelled passes to measure TPR on"
    )
    with pytest.raises(ValueError, match="tpr must be between 0 and 1"):
        corrected_pass_rate(0.5, 100, 1.2, 0.9, 10, 10)
    with pytest.raises(ValueError, match="n_neg must be a non-negative integer"):
        corrected_pass_rate(0.5, 100, 0.9, 0.9, 10, -1)
    with pytest.raises(ValueError, match="method must be"):
        corrected_pass_rate(0.5, 100, 0.9, 0.9, 10, 10, method="exact")  # type: ignore[arg-type]


# --- Simulation: a judge with known error rates ----------------------------------------

TRUE_RATE, TPR, TNR = 0.30, 0.90, 0.75
N_LABELLED, N_JUDGED, REPS = 150, 800, 1000


@pytest.fixture(scope="module")
def simulated() -> dict[str, np.ndarray]:
    """REPS seeded studies: N_LABELLED human-labelled items to measure the judge on, then
    N_JUDGED unlabelled items from the same population that only the judge sees."""
    rng = np.random.default_rng(20240611)
    rows: dict[str, list[float]] = {
        k: [] for k in ("naive", "rg", "rg_lo", "rg_hi", "d_lo", "d_hi", "ppi", "p_lo", "p_hi")
    }
    for _ in range(REPS):
        human = rng.random(N_LABELLED) < TRUE_RATE
        judge = np.where(human, rng.random(N_LABELLED) < TPR, rng.random(N_LABELLED) >= TNR)
        truth = rng.random(N_JUDGED) < TRUE_RATE
        verdicts = np.where(truth, rng.random(N_JUDGED) < TPR, rng.random(N_JUDGED) >= TNR)
        agreement = binary_agreement(list(judge), list(human))
        assert agreement.tpr.value is not None and agreement.tnr.value is not None
        args = (
            float(verdicts.mean()),
            N_JUDGED,
            agreement.tpr.value,
            agreement.tnr.value,
            agreement.n_pos,
            agreement.n_neg,
        )
        sim = corrected_pass_rate(*args, draws=2000, seed=int(rng.integers(2**31)))
        delta = corrected_pass_rate(*args, method="delta")
        ppi = ppi_mean(list(verdicts * 1.0), list(judge * 1.0), list(human * 1.0))
        for key, value in (
            ("naive", sim.naive),
            ("rg", sim.estimate),
            ("rg_lo", sim.low),
            ("rg_hi", sim.high),
            ("d_lo", delta.low),
            ("d_hi", delta.high),
            ("ppi", ppi.estimate),
            ("p_lo", ppi.low),
            ("p_hi", ppi.high),
        ):
            assert value is not None
            rows[key].append(value)
    return {k: np.array(v) for k, v in rows.items()}


def test_naive_judge_rate_is_biased(simulated: dict[str, np.ndarray]) -> None:
    # The judge passes 0.9 * 0.3 + 0.25 * 0.7 = 0.445 on average, not 0.30.
    assert simulated["naive"].mean() == pytest.approx(0.445, abs=0.005)
    assert simulated["naive"].mean() - TRUE_RATE > 0.1


def test_corrected_rates_are_unbiased(simulated: dict[str, np.ndarray]) -> None:
    # The estimates' SD is about 0.06, so over 1000 reps the mean is within about 0.002 of
    # its expectation; 0.01 leaves room for the small bias clipping and the ratio add.
    assert abs(simulated["rg"].mean() - TRUE_RATE) < 0.01
    assert abs(simulated["ppi"].mean() - TRUE_RATE) < 0.01


@pytest.mark.parametrize(("low", "high"), [("rg_lo", "rg_hi"), ("d_lo", "d_hi"), ("p_lo", "p_hi")])
def test_intervals_cover_the_true_rate(
    simulated: dict[str, np.ndarray], low: str, high: str
) -> None:
    # A 95% interval over 1000 reps: coverage SE is 0.007, so [0.93, 0.97] is about +-3 SE.
    covered = (simulated[low] <= TRUE_RATE) & (TRUE_RATE <= simulated[high])
    assert 0.93 <= covered.mean() <= 0.97


# --- PPI -------------------------------------------------------------------------------


def test_ppi_hand_computed() -> None:
    # Judge mean on unlabelled [1, 0, 1, 1] = 0.75; human - judge on labelled = [0, -1, 0],
    # mean -1/3; estimate 0.75 - 1/3 = 5/12.
    # Var = s^2(unlabelled) / 4 + var(diff) = (0.75 / 3) / 4 + var(diff). For pass/fail
    # labels the rectifier's variance is the larger of s^2 / n = ((2/3) / 2) / 3 and its
    # shrunk form: 0.1 pseudo-disagreements each way give shares 0.1 / 3.2 (human pass,
    # judge fail) and 1.1 / 3.2 (the reverse), (0.375 - 0.3125^2) / (3 - 1) = 0.1387.
    # The t interval's degrees of freedom are Welch-Satterthwaite's.
    r = ppi_mean([1, 0, 1, 1], [1, 1, 0], [1, 0, 0])
    assert r.estimate == pytest.approx(5 / 12)
    assert r.judge_mean == pytest.approx(0.75) and r.rectifier == pytest.approx(-1 / 3)
    up, down = 0.1 / 3.2, 1.1 / 3.2
    v_u, v_l = 0.25 / 4, max((1 / 3) / 3, (up + down - (up - down) ** 2) / 2)
    assert v_l == pytest.approx(0.1387, abs=1e-4)
    assert r.se == pytest.approx(math.sqrt(v_u + v_l))
    df = (v_u + v_l) ** 2 / (v_u**2 / 3 + v_l**2 / 2)
    assert r.df == pytest.approx(df)
    assert r.low is not None and r.high is not None
    half = float(stats.t.ppf(0.975, df)) * math.sqrt(v_u + v_l)
    assert r.high - r.estimate == pytest.approx(half) and r.estimate - r.low == pytest.approx(half)
    assert (r.n_labelled, r.n_unlabelled) == (3, 4)


def test_ppi_degenerate() -> None:
    r = ppi_mean([True, False], [True], [False])
    assert r.estimate == pytest.approx(-0.5) and r.low is None and r.se is None
    assert r.reason is not None
    with pytest.raises(ValueError, match="at least one unlabelled and one labelled"):
        ppi_mean([], [1.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        ppi_mean([float("nan")], [1.0], [1.0])


# --- calibrate -------------------------------------------------------------------------


def score(
    conv: str,
    value: Label,
    *,
    source: ScoreSource,
    kind: ScoreKind = "binary",
    name: str = "resolved",
    model: str | None = "judge-a",
    index: int | None = None,
) -> Score:
    return Score(
        conversation_id=conv,
        name=name,
        value=value,
        kind=kind,
        source=source,
        judge_model=model if source == "model" else None,
        message_index=index,
    )


def pairs(
    judge: Sequence[Label],
    human: Sequence[Label],
    *,
    kind: ScoreKind = "binary",
    name: str = "resolved",
) -> tuple[list[Score], list[Score]]:
    js = [score(f"c{i}", v, source="model", kind=kind, name=name) for i, v in enumerate(judge)]
    hs = [score(f"c{i}", v, source="human", kind=kind, name=name) for i, v in enumerate(human)]
    return js, hs


def test_calibrate_binary_judge() -> None:
    judge, human = table(40, 10, 5, 45)
    js, hs = pairs(judge, human)
    (r,) = calibrate(js, hs)
    assert (r.name, r.judge_model, r.kind, r.n, r.n_judged) == (
        "resolved",
        "judge-a",
        "binary",
        100,
        100,
    )
    assert r.calibrated
    assert r.binary is not None and r.kappa is not None
    assert r.binary.tpr.value == pytest.approx(0.8) and r.kappa.value == pytest.approx(0.7)
    assert (
        r.status == "calibrated on 100 human labels: TPR 0.80, TNR 0.90, kappa 0.70, accuracy 0.85"
    )
    corrected = r.correct(0.5, 1000)
    assert corrected.estimate == pytest.approx((0.5 + 0.9 - 1) / 0.7)


def test_calibrate_reports_too_few_and_missing_labels() -> None:
    judge, human = table(6, 2, 1, 3)
    js, hs = pairs(judge, human)
    unlabelled = [score(f"u{i}", True, source="model", model="judge-b") for i in range(5)]
    reports = calibrate([*js, *unlabelled], hs)
    assert [(r.judge_model, r.calibrated, r.status) for r in reports] == [
        ("judge-a", False, "uncalibrated: only 12 human labels; need 30"),
        ("judge-b", False, "uncalibrated: no human labels"),
    ]
    assert reports[0].binary is not None and reports[0].binary.n == 12
    assert reports[1].n_judged == 5 and reports[1].n == 0 and reports[1].kappa is None
    with pytest.raises(ValueError, match="not a binary judge"):
        reports[1].correct(0.5, 10)


def test_calibrate_binary_without_human_failures_is_uncalibrated() -> None:
    js, hs = pairs([True] * 29 + [False], [True] * 30)
    (r,) = calibrate(js, hs)
    assert not r.calibrated
    assert r.status.startswith("uncalibrated: TNR undefined (no human-labelled failures")


def test_calibrate_ordinal_judge() -> None:
    judge = [1, 2, 3, 3, 1, 3] * 5
    human = [1, 2, 3, 3, 2, 1] * 5
    js, hs = pairs([float(v) for v in judge], [float(v) for v in human], kind="ordinal")
    (r,) = calibrate(js, hs)
    assert r.calibrated and r.n == 30
    assert r.categories == (1.0, 2.0, 3.0)
    assert r.weighted_kappa is not None and r.weighted_kappa.value == pytest.approx(4 / 9)
    assert r.kappa is not None and r.kappa.value == pytest.approx(0.5)
    assert r.accuracy is not None and r.accuracy.value == pytest.approx(4 / 6)
    assert r.status.startswith("calibrated on 30 human labels: weighted kappa 0.44 (quadratic)")


def test_calibrate_ordinal_fills_unused_scale_points() -> None:
    js, hs = pairs([1.0, 5.0, 2.0, 4.0], [1.0, 5.0, 4.0, 2.0], kind="ordinal")
    (r,) = calibrate(js, hs, min_labels=4)
    assert r.categories == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert r.weighted_kappa == weighted_kappa([1, 5, 2, 4], [1, 5, 4, 2], [1, 2, 3, 4, 5])


def test_calibrate_categorical_and_degenerate_judges() -> None:
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    js, hs = pairs(a, b, kind="categorical", name="tone")
    same_js, same_hs = pairs(["ok"] * 40, ["ok"] * 40, kind="categorical", name="format")
    cont_js, cont_hs = pairs([0.5] * 40, [0.4] * 40, kind="continuous", name="score")
    reports = calibrate([*js, *same_js, *cont_js], [*hs, *same_hs, *cont_hs])
    assert [r.name for r in reports] == ["format", "score", "tone"]
    fmt, cont, tone = reports
    assert tone.calibrated and tone.kappa is not None and tone.kappa.value == pytest.approx(0.4)
    assert tone.status == "calibrated on 50 human labels: kappa 0.40, agreement 0.70"
    assert not fmt.calibrated and fmt.status.startswith("uncalibrated: kappa undefined (")
    assert not cont.calibrated and "continuous" in cont.status


def test_calibrate_join_rules() -> None:
    judge = [
        score("c1", True, source="model"),
        score("c1", False, source="model"),  # repeat: the last one counts
        score("c2", True, source="model"),
        score("c3", True, source="model", index=2),
        score("c4", True, source="rule"),  # not a judge
        score("c5", True, source="model"),
    ]
    human = [
        score("c1", False, source="human"),
        score("c2", True, source="human"),
        score("c2", False, source="human"),  # conflicting labels: item set aside
        score("c3", True, source="human", index=2),
        score("c3", False, source="human", index=3),  # other message: no join
        score("c4", True, source="human"),
        score("c5", 1.0, source="human", kind="ordinal"),  # other kind: ignored
        score("c6", True, source="model"),  # not a human label
    ]
    (r,) = calibrate(judge, human, min_labels=1)
    assert (r.n_judged, r.n) == (4, 2)
    assert r.binary is not None
    assert (r.binary.tp, r.binary.fn, r.binary.fp, r.binary.tn) == (1, 0, 0, 1)
    assert r.notes == (
        "1 repeated judge scores: the last one per item counts",
        "1 items set aside: their human labels disagree",
        "1 human labels ignored: not binary like the judge",
    )
    assert calibrate([], human) == []
