"""Judge rates corrected with human labels: fixed tables for every printed figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from convsim.stats import judge_rates, ppi_estimate
from convsim.trace import Score

NAN = float("nan")


def test_stratified_ppi_hand_computed() -> None:
    # Stratum a: unlabelled judge [1, 1, 0, 1] (mean 0.75); labelled (judge, human)
    # (1, 1), (1, 0), (0, 0): rectifier (0 - 1 + 0) / 3. Stratum b: unlabelled [0, 0, 1]
    # (1/3); labelled (0, 0), (1, 1): rectifier 0. Shares 7/12 and 5/12.
    judge = [1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    human = [None, None, None, None, 1, 0, 0, None, None, None, 0, 1]
    strata = ["a"] * 7 + ["b"] * 5
    r = ppi_estimate(judge, human, strata=strata)
    theta = {"a": 0.75 - 1 / 3, "b": 1 / 3}
    est = 7 / 12 * theta["a"] + 5 / 12 * theta["b"]
    assert r.estimate == pytest.approx(est)
    assert (r.n_labelled, r.n_unlabelled, r.strata) == (5, 7, 2)

    # Variance: per stratum and part, share^2 * s^2 / n, a pass/fail rectifier's s^2 / n
    # shrunk by 0.1 pseudo-disagreements each way; then the shares' own variance.
    def shrunk(up: float, down: float, n: int) -> float:
        total = n + 0.2
        u, d = (up + 0.1) / total, (down + 0.1) / total
        return (u + d - (u - d) ** 2) / (n - 1)

    parts: list[tuple[float, int]] = [
        ((7 / 12) ** 2 * float(np.var([1, 1, 0, 1], ddof=1)) / 4, 3),
        ((7 / 12) ** 2 * max(float(np.var([0, -1, 0], ddof=1)) / 3, shrunk(0, 1, 3)), 2),
        ((5 / 12) ** 2 * float(np.var([0, 0, 1], ddof=1)) / 3, 2),
        ((5 / 12) ** 2 * shrunk(0, 0, 2), 1),
    ]
    z = np.asarray([theta[s] - est for s in strata]) / 12
    parts.append((float((z * z).sum()) * 12 / 11, 11))
    var = sum(v for v, _ in parts)
    assert r.se == pytest.approx(math.sqrt(var))
    df = var**2 / sum(v * v / d for v, d in parts if v > 0)
    assert r.df == pytest.approx(df)
    assert r.high == pytest.approx(est + stats.t.ppf(0.975, df) * math.sqrt(var))


def test_known_stratum_sizes_replace_the_judged_shares() -> None:
    judge = [1, 0, 1, 1, 0, 0, 1, 0]
    human = [1, None, 1, None, 0, None, 1, None]
    strata = ["a", "a", "a", "a", "b", "b", "b", "b"]
    r = ppi_estimate(judge, human, strata=strata, stratum_sizes={"a": 900, "b": 100})
    # a: unlabelled [0, 1] + rectifier 0 = 0.5; b: unlabelled [0, 0] + rectifier 0 = 0.
    assert r.estimate == pytest.approx(0.9 * 0.5 + 0.1 * 0.0)
    with pytest.raises(ValueError, match="stratum 'b' has judged items but no size"):
        ppi_estimate(judge, human, strata=strata, stratum_sizes={"a": 900})


def test_weights_weigh_and_their_scale_does_not_matter() -> None:
    judge = [1, 0, 1, 1, 0, 1]
    human = [1, None, None, 0, None, 1]
    w = [1.0, 10.0, 1.0, 1.0, 10.0, 1.0]
    r = ppi_estimate(judge, human, weights=w)
    # Unlabelled: judge 0 (w 10), 1 (w 1), 0 (w 10) -> 1/21; labelled rectifier (0-1+0)/3.
    assert r.estimate == pytest.approx(1 / 21 - 1 / 3)
    scaled = ppi_estimate(judge, human, weights=[3 * x for x in w])
    assert scaled.estimate == pytest.approx(r.estimate) and scaled.se == pytest.approx(r.se)


@given(
    st.lists(st.tuples(st.booleans(), st.sampled_from([None, True, False])), min_size=6),
    st.floats(0.1, 10.0),
)
def test_equal_weights_are_no_weights(items: list[tuple[bool, bool | None]], w: float) -> None:
    judge = [float(j) for j, _ in items]
    human = [None if h is None else float(h) for _, h in items]
    if sum(h is not None for h in human) < 2 or sum(h is None for h in human) < 2:
        return
    plain = ppi_estimate(judge, human)
    weighted = ppi_estimate(judge, human, weights=[w] * len(items))
    assert weighted.estimate == pytest.approx(plain.estimate)
    assert weighted.se == pytest.approx(plain.se, abs=1e-12)


def test_every_item_labelled_gives_the_labels_mean() -> None:
    # The labels' mean, 1/2, with the variance of a mean of 4: s^2 / n = (1/3) / 4.
    r = ppi_estimate([1, 1, 0, 1], [1, 0, 0, 1])
    assert r.estimate == pytest.approx(0.5) and r.se == pytest.approx(math.sqrt(1 / 3 / 4))


def test_a_stratum_without_labels_is_an_error() -> None:
    with pytest.raises(ValueError, match="stratum 'b' has no labelled item"):
        ppi_estimate([1, 0, 1, 1], [1, 0, None, None], strata=["a", "a", "b", "b"])


# --- judge_rates: the CLI's path --------------------------------------------------------


def judged(cid: str, value: bool, name: str = "rubric.goal", **kw: object) -> Score:
    return Score(
        conversation_id=cid,
        name=name,
        value=value,
        kind="binary",
        source="model",
        judge_model="j",
        **kw,
    )


def label(cid: str, value: bool, name: str = "rubric.goal") -> Score:
    return Score(conversation_id=cid, name=name, value=value, kind="binary", source="human")


def test_labelled_items_are_not_reused_in_the_judge_part() -> None:
    # 8 judged: the judge passes c0-c5. Humans labelled c0 (pass), c1 (fail), c6 (fail).
    scores = [judged(f"c{i}", i < 6) for i in range(8)]
    labels = [label("c0", True), label("c1", False), label("c6", False)]
    [rate], unmatched = judge_rates(scores, labels)
    # Unlabelled c2-c5, c7: judge mean 4/5; rectifier (0 - 1 + 0) / 3.
    assert rate.ppi is not None and rate.ppi.estimate == pytest.approx(4 / 5 - 1 / 3)
    assert rate.ppi.judge_mean == pytest.approx(4 / 5)
    assert (rate.n_judged, rate.n_labelled) == (8, 3) and unmatched.count == 0
    # Rogan-Gladen: the judge's rate on the unlabelled items, TPR 1/1, TNR 1/2.
    rg = rate.rogan_gladen
    assert rg is not None and rg.naive == pytest.approx(4 / 5)
    assert rg.youden == pytest.approx(1.0 + 0.5 - 1.0)
    assert rate.judge_mean == pytest.approx(6 / 8)


def test_strata_weigh_each_cohort_with_its_share_of_the_judged() -> None:
    # Cohort a, 8 judged (the judge passes a0-a5): labels a0 pass, a1 fail, a6 fail.
    # Cohort b, 4 judged (the judge passes b0, b1): labels b0 pass, b2 fail. Labels are
    # 3 + 2 while traffic is 8 + 4: each cohort counts with its judged share.
    scores = [judged(f"a{i}", i < 6, tags={"cohort": "a"}) for i in range(8)]
    scores += [judged(f"b{i}", i < 2, tags={"cohort": "b"}) for i in range(4)]
    labels = [label("a0", True), label("a1", False), label("a6", False)]
    labels += [label("b0", True), label("b2", False)]
    [rate], _ = judge_rates(scores, labels, strata="cohort")
    assert rate.ppi is not None and rate.ppi.strata == 2
    # PPI: a = unlabelled a2-a5, a7 (4/5) + rectifier (0 - 1 + 0) / 3; b = [1, 0] + 0.
    assert rate.ppi.estimate == pytest.approx(8 / 12 * (4 / 5 - 1 / 3) + 4 / 12 * 0.5)
    # Rogan-Gladen per cohort: a has TPR 1, TNR 1/2 and 4/5 passing unlabelled, so
    # (0.8 + 0.5 - 1) / 0.5 = 0.6; b has TPR = TNR = 1 and 1/2 passing: 0.5.
    rg = rate.rogan_gladen
    assert rg is not None and rg.estimate == pytest.approx(8 / 12 * 0.6 + 4 / 12 * 0.5)
    assert rg.youden == pytest.approx(8 / 12 * 0.5 + 4 / 12 * 1.0)
    assert rg.low is not None and rg.high is not None
    assert rg.low < 8 / 12 * 0.6 + 4 / 12 * 0.5 < rg.high


def test_unmatched_labels_are_counted_and_named() -> None:
    scores = [judged(f"c{i}", True, name="rubric.goal_completion") for i in range(5)]
    labels = [label(f"c{i}", True, name="goal_completion") for i in range(4)]
    labels.append(label("c9", True, name="rubric.goal_completion"))
    [rate], unmatched = judge_rates(scores, labels)
    assert rate.ppi is None and "no labelled item" in (rate.reason or "")
    assert unmatched.count == 5
    assert dict(unmatched.names) == {"goal_completion": 4}
    assert dict(unmatched.suggestions) == {"goal_completion": "rubric.goal_completion"}


def test_all_labelled_reports_the_labels_mean_and_no_rogan_gladen() -> None:
    scores = [judged(f"c{i}", True) for i in range(6)]
    labels = [label(f"c{i}", i % 3 > 0) for i in range(6)]
    [rate], _ = judge_rates(scores, labels)
    assert rate.ppi is not None and rate.ppi.estimate == pytest.approx(4 / 6)
    assert rate.rogan_gladen is None
