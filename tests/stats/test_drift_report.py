"""compare_windows end to end: windows, alarms, families, judge guard, report output."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convsim.stats.drift import (
    ALL,
    MIX_METRIC,
    DriftReport,
    Finding,
    JudgeConfig,
    ScoreArrays,
    Window,
    compare_windows,
    min_effects_from_rubrics,
)
from convsim.trace import Score, ScoreKind

JUDGE_A = JudgeConfig("judge-a", "p1", "1")
JUDGE_B = JudgeConfig("judge-b", "p2", "1")


def binary_window(
    label: str,
    rates: dict[str, float],
    n: int,
    seed: int,
    *,
    judge: JudgeConfig = JUDGE_A,
    name: str = "pass",
) -> Window:
    """``n`` conversations per vertical with the given pass rates (exact counts)."""
    rng = np.random.default_rng(seed)
    vals: list[np.ndarray] = []
    tags: list[str] = []
    for vertical, rate in rates.items():
        k = round(rate * n)
        v = np.r_[np.ones(k), np.zeros(n - k)]
        rng.shuffle(v)
        vals.append(v)
        tags += [vertical] * n
    values = np.concatenate(vals)
    return Window.from_arrays(
        label,
        {name: ScoreArrays("binary", np.arange(values.size), values, judge=judge)},
        n_conversations=values.size,
        tags={"vertical": tags},
    )


# --- windows --------------------------------------------------------------------------


def scores_for(window: str, n: int, judge: str = "j1") -> Iterator[Score]:
    for i in range(n):
        cid = f"{window}-{i}"
        tags = {"vertical": "retail" if i % 2 else "travel"}
        yield Score(
            conversation_id=cid,
            name="goal",
            value=bool(i % 3),
            kind="binary",
            tags=tags,
            inclusion_prob=0.5 if i % 4 else 1.0,
            window=window,
            judge_model=judge,
            prompt_hash="h",
        )
        for turn in range(3):
            yield Score(
                conversation_id=cid,
                message_index=2 * turn + 1,
                name="tone",
                value=float(1 + (i + turn) % 5),
                kind="ordinal",
                tags=tags,
                window=window,
            )
        yield Score(
            conversation_id=cid,
            name="reason",
            value=["billing", "none", "technical"][i % 3],
            kind="categorical",
            window=window,
        )


def test_from_scores_builds_columns() -> None:
    w = Window.from_scores(scores_for("2026-W47", 10))
    assert w.label == "2026-W47" and w.n_conversations == 10
    assert w.names == ("goal", "reason", "tone")
    tone = w.scores["tone"]
    assert tone.n_rows == 30 and tone.turn_level and tone.kind == "ordinal"
    assert list(tone.message_index[:3]) == [1, 3, 5]
    goal = w.scores["goal"]
    assert not goal.turn_level and goal.judge_configs == (JudgeConfig("j1", "h", None),)
    assert w.scores["reason"].categories == ("billing", "none", "technical")
    # Each score keeps its own weight: inclusion probability 0.5 -> 2; absent -> 1.
    assert list(goal.weight[:5]) == [1.0, 2.0, 2.0, 2.0, 1.0]
    assert set(tone.weight.tolist()) == {1.0}
    # A conversation counts in the mix with its most probable score (tone: census).
    assert set(w.weights.tolist()) == {1.0}
    assert list(w.tag_values("vertical")[:2]) == ["travel", "retail"]
    assert list(w.tag_values("nope")[:1]) == ["(none)"]


def test_from_scores_rejects_mixed_kinds_and_missing_label() -> None:
    a = Score(conversation_id="c", name="x", value=True, kind="binary")
    b = Score(conversation_id="c", name="x", value=1.0, kind="continuous")
    with pytest.raises(ValueError, match="both binary and continuous"):
        Window.from_scores([a, b], "w")
    with pytest.raises(ValueError, match="window label"):
        Window.from_scores([a])


def test_from_arrays_validates() -> None:
    with pytest.raises(ValueError, match="binary values"):
        Window.from_arrays("w", {"x": ScoreArrays("binary", [0], [0.5])}, n_conversations=1)
    with pytest.raises(ValueError, match="conversation indices"):
        Window.from_arrays("w", {"x": ScoreArrays("binary", [3], [1])}, n_conversations=1)
    with pytest.raises(ValueError, match="inclusion probabilities"):
        Window.from_arrays("w", {}, n_conversations=1, inclusion_prob=[0.0])


def test_end_to_end_from_scores() -> None:
    r = compare_windows(
        Window.from_scores(scores_for("w1", 200)),
        Window.from_scores(scores_for("w2", 240)),
        by=("vertical",),
        bootstrap=200,
    )
    metrics = {(f.metric, f.cohort_label, f.kind) for f in r.findings}
    assert ("tone", ALL, "score") in metrics
    assert ("tone", "vertical=retail", "score") in metrics
    assert (MIX_METRIC, ALL, "mix") in metrics
    for f in r.findings:
        if f.kind == "score":
            assert f.p_value is not None and 0.0 <= f.p_value <= 1.0
            assert f.mde is not None and f.mde > 0
            assert f.ci_low is not None and f.ci_high is not None
            assert f.ci_low <= (f.effect or 0.0) <= f.ci_high
    tone = next(f for f in r.findings if f.metric == "tone" and f.cohort == ALL)
    assert tone.ci_method is not None and "bootstrap" in tone.ci_method
    assert tone.decomposition is not None


# --- alarm rule and families ----------------------------------------------------------


def test_alarm_needs_significance_and_interval_beyond_min_effect() -> None:
    rates0 = {"retail": 0.80, "travel": 0.80}
    rates1 = {"retail": 0.68, "travel": 0.68}
    b = binary_window("b", rates0, 2000, 1)
    c = binary_window("c", rates1, 2000, 2)
    r = compare_windows(b, c, bootstrap=0)
    f = r.findings[0]
    # A 12-point drop with n = 4000 per window: the interval (about -0.14 to -0.10) lies
    # beyond the default 5-point minimum effect.
    assert f.significant and f.alarm and f.direction == "down"
    assert f.ci_high is not None and f.ci_high < -0.05
    # With a 15-point minimum effect the same change is significant but not an alarm.
    r = compare_windows(b, c, bootstrap=0, min_effects={"pass": 0.15})
    f = r.findings[0]
    assert f.significant and not f.alarm and f.min_effect == 0.15
    assert "not (yet) important" in f.note


def test_tiny_but_significant_change_is_no_alarm() -> None:
    b = binary_window("b", {"retail": 0.800}, 100_000, 1)
    c = binary_window("c", {"retail": 0.790}, 100_000, 2)
    f = compare_windows(b, c, bootstrap=0).findings[0]
    assert f.significant and not f.alarm


def test_no_drift_reports_mde() -> None:
    b = binary_window("b", {"retail": 0.8}, 1000, 1)
    c = binary_window("c", {"retail": 0.8}, 1000, 2)
    f = compare_windows(b, c, bootstrap=0).findings[0]
    assert not f.significant and not f.alarm
    # MDE at p = 0.8, n = 1000 per window: 2.80 * sqrt(2 * 0.16 / 1000) = 0.0501 in the
    # textbook; 0.0524 once the moved rates (0.75, pooled 0.775) get their larger variances.
    assert f.mde == pytest.approx(0.0524, abs=5e-4)
    assert f.mde is not None and f.mde_alarm is not None and f.mde_alarm > f.mde
    assert "no drift detected" in f.note


def test_families_holm_primary_bh_drilldown() -> None:
    rates0 = {"retail": 0.8, "travel": 0.8, "banking": 0.8}
    rates1 = {"retail": 0.8, "travel": 0.7, "banking": 0.8}
    b = binary_window("b", rates0, 400, 1)
    c = binary_window("c", rates1, 400, 2)
    r = compare_windows(b, c, by=("vertical",), bootstrap=0)
    fam = {(f.cohort_label, f.family) for f in r.findings}
    assert (ALL, "primary") in fam and ("vertical=travel", "drilldown") in fam
    drill = [f for f in r.findings if f.family == "drilldown"]
    from convsim.stats.drift import benjamini_hochberg

    expected = benjamini_hochberg([f.p_value or 0.0 for f in drill])
    assert [f.p_adjusted for f in drill] == pytest.approx(expected)
    travel = next(f for f in drill if f.cohort_label == "vertical=travel")
    assert travel.significant
    # The drill-down MDE is stated at the family's corrected level (alpha / 3).
    assert (travel.mde or 0) > (r.findings[0].mde or 0)


def test_insufficient_cohorts_are_reported_not_tested() -> None:
    b = binary_window("b", {"retail": 0.8, "travel": 0.8}, 200, 1)
    rng = np.random.default_rng(0)
    vals = np.r_[rng.random(200) < 0.8, rng.random(10) < 0.8]
    c = Window.from_arrays(
        "c",
        {"pass": ScoreArrays("binary", np.arange(210), vals, judge=JUDGE_A)},
        n_conversations=210,
        tags={"vertical": ["retail"] * 200 + ["travel"] * 10},
    )
    r = compare_windows(b, c, by=("vertical",), min_n=30, bootstrap=0)
    small = next(f for f in r.findings if f.cohort_label == "vertical=travel")
    assert small.kind == "insufficient" and small.p_value is None and not small.alarm
    assert small.n_current == 10 and "at least 30" in small.note
    assert small.family is None
    assert r.summary()["insufficient"] == 1


def test_missing_score_and_kind_mismatch_are_insufficient() -> None:
    b = binary_window("b", {"retail": 0.8}, 50, 1)
    c = binary_window("c", {"retail": 0.8}, 50, 2, name="other")
    r = compare_windows(b, c, bootstrap=0)
    assert {f.kind for f in r.findings} == {"insufficient"}
    assert any("no pass scores in window c" in f.note for f in r.findings)


# --- mix vs within --------------------------------------------------------------------


def test_simpson_case_is_a_within_alarm_and_a_mix_shift() -> None:
    # Aggregate pass rate rises (0.62 -> 0.70) while every cohort drops 8 points,
    # because traffic moves to the easy cohort.
    b = _mixed("b", {"easy": (0.90, 400), "hard": (0.50, 1000)}, 1)
    c = _mixed("c", {"easy": (0.82, 1200), "hard": (0.42, 300)}, 2)
    r = compare_windows(b, c, by=("vertical",), bootstrap=0, min_effects={"pass": 0.02})
    f = r.findings[0]
    d = f.decomposition
    assert d is not None and d.total > 0 > d.within
    assert d.mix + d.within == pytest.approx(d.total)
    assert f.effect == pytest.approx(d.within) and f.alarm
    mix = next(x for x in r.findings if x.kind == "mix")
    assert mix.significant and mix.alarm and (mix.effect or 0) > 0.3
    assert sum(row.mix for row in d.rows) == pytest.approx(d.mix)


def _mixed(label: str, cells: dict[str, tuple[float, int]], seed: int) -> Window:
    rng = np.random.default_rng(seed)
    vals: list[np.ndarray] = []
    tags: list[str] = []
    for cell, (rate, n) in cells.items():
        k = round(rate * n)
        v = np.r_[np.ones(k), np.zeros(n - k)]
        rng.shuffle(v)
        vals.append(v)
        tags += [cell] * n
    values = np.concatenate(vals)
    return Window.from_arrays(
        label,
        {"pass": ScoreArrays("binary", np.arange(values.size), values)},
        n_conversations=values.size,
        tags={"vertical": tags},
    )


# --- judge guard ----------------------------------------------------------------------


def test_judge_change_without_anchor_warns_and_suppresses() -> None:
    b = binary_window("b", {"retail": 0.8}, 2000, 1, judge=JUDGE_A)
    c = binary_window("c", {"retail": 0.6}, 2000, 2, judge=JUDGE_B)
    r = compare_windows(b, c, bootstrap=0)
    judge = [f for f in r.findings if f.kind == "judge"]
    assert len(judge) == 1 and "judge configuration changed" in judge[0].note
    assert "judge-a" in judge[0].note and "judge-b" in judge[0].note
    score = r.findings[0]
    assert score.significant and not score.alarm and "alarm suppressed" in score.note
    assert "## Judge" in r.to_markdown()


def _anchor(old: np.ndarray, new: np.ndarray, kind: ScoreKind = "binary") -> Window:
    n = old.size
    conv = np.r_[np.arange(n), np.arange(n)]
    return Window.from_arrays(
        "anchor",
        {
            "pass": ScoreArrays(
                kind,
                conv,
                np.r_[old, new],
                judge=[JUDGE_A, JUDGE_B],
                judge_index=np.r_[np.zeros(n, int), np.ones(n, int)],
            )
        },
        n_conversations=n,
    )


def test_judge_anchor_mcnemar_hand_computed() -> None:
    # 100 anchor items: 10 pass under the old judge and fail under the new (b), 2 the
    # reverse (c). Exact McNemar: 2 * P(Bin(12, 1/2) <= 2) = 2 * 79 / 4096 = 0.038574.
    old = np.r_[np.ones(10), np.zeros(2), np.ones(60), np.zeros(28)]
    new = np.r_[np.zeros(10), np.ones(2), np.ones(60), np.zeros(28)]
    b = binary_window("b", {"retail": 0.8}, 500, 1, judge=JUDGE_A)
    c = binary_window("c", {"retail": 0.7}, 500, 2, judge=JUDGE_B)
    r = compare_windows(b, c, bootstrap=0, anchor=_anchor(old, new))
    j = next(f for f in r.findings if f.kind == "judge")
    assert j.test == "exact McNemar (anchor set)" and j.n_baseline == 100
    assert j.p_value == pytest.approx(158 / 4096)
    assert j.effect == pytest.approx(-0.08) and j.alarm
    assert not r.findings[0].alarm


def test_judge_anchor_without_effect_annotates_only() -> None:
    rng = np.random.default_rng(4)
    old = (rng.random(400) < 0.8).astype(float)
    new = old.copy()
    flip = rng.choice(400, 6, replace=False)
    new[flip] = 1 - new[flip]
    b = binary_window("b", {"retail": 0.80}, 3000, 1, judge=JUDGE_A)
    c = binary_window("c", {"retail": 0.68}, 3000, 2, judge=JUDGE_B)
    r = compare_windows(b, c, bootstrap=0, anchor=_anchor(old, new))
    j = next(f for f in r.findings if f.kind == "judge")
    assert not j.significant and "no judge effect" in j.note
    f = r.findings[0]
    assert f.alarm and "anchor set shows no judge effect" in f.note


def test_judge_anchor_wilcoxon_for_ordinal() -> None:
    rng = np.random.default_rng(2)
    old = rng.integers(1, 6, 80).astype(float)
    new = np.clip(old + rng.choice([0, 0, 1], 80), 1, 5)
    b = Window.from_arrays(
        "b",
        {"pass": ScoreArrays("ordinal", np.arange(50), np.full(50, 3.0), judge=JUDGE_A)},
        n_conversations=50,
    )
    c = Window.from_arrays(
        "c",
        {"pass": ScoreArrays("ordinal", np.arange(50), np.full(50, 3.0), judge=JUDGE_B)},
        n_conversations=50,
    )
    r = compare_windows(b, c, bootstrap=0, anchor=_anchor(old, new, "ordinal"))
    j = next(f for f in r.findings if f.kind == "judge")
    from scipy import stats

    ref = stats.wilcoxon(new - old, zero_method="pratt", method="approx")
    assert j.test == "Wilcoxon signed-rank (anchor set)"
    assert j.p_value == pytest.approx(ref.pvalue)
    assert j.effect == pytest.approx(float((new - old).mean()))


# --- report output --------------------------------------------------------------------


def test_json_and_markdown() -> None:
    b = binary_window("2026-W46", {"retail": 0.8, "travel": 0.8}, 1500, 1)
    c = binary_window("2026-W47", {"retail": 0.8, "travel": 0.66}, 1500, 2)
    r = compare_windows(b, c, by=("vertical",), bootstrap=0)
    data = json.loads(r.to_json())
    assert data["summary"]["alarms"] == len(r.alarms) >= 1
    keys = {
        "metric", "cohort", "test", "statistic", "p_value", "p_adjusted", "effect", "ci_low",
        "ci_high", "mde", "n_baseline", "n_current", "alarm", "kind", "note",
    }  # fmt: skip
    for f in data["findings"]:
        assert keys <= set(f)
    alarm = next(f for f in data["findings"] if f["alarm"])
    # Chart data for every alarm: each window's estimate with its interval.
    assert alarm["baseline"]["estimate"] is not None and alarm["current"]["ci_low"] is not None
    md = r.to_markdown()
    assert "# Drift report: 2026-W46 → 2026-W47" in md and "**ALARM**" in md
    assert "no drift detected" in md


def _finding(metric: str, effect: float, p: float, **kw: object) -> Finding:
    base: dict[str, object] = {
        "metric": metric,
        "cohort": ALL,
        "kind": "score",
        "test": "t",
        "statistic": 0.0,
        "p_value": p,
        "p_adjusted": p,
        "effect": effect,
        "ci_low": effect - 0.01,
        "ci_high": effect + 0.01,
        "mde": 0.3,
        "n_baseline": 100,
        "n_current": 100,
        "alarm": False,
        "score_kind": "binary",
        "min_effect": 0.05,
        "family": "primary",
    }
    base.update(kw)
    return Finding(**base)  # type: ignore[arg-type]


def test_the_headline_leads_with_what_matters_each_group_by_size() -> None:
    findings = (
        _finding("quiet", 0.01, 0.6),
        _finding("noise", 0.2, 0.3),  # large but nowhere near significant: left out
        _finding(
            "tone", -0.3, 0.001, alarm=True, significant=True, score_kind="ordinal", min_effect=0.25
        ),  # fmt: skip
        _finding("goal", -0.1, 0.0001, alarm=True, significant=True),
        _finding("small", 0.03, 0.01, significant=True),
        _finding("judged", -0.2, 0.001, significant=True, note="x; alarm suppressed"),
        _finding("frustration", 0.44, 0.08),  # a 44-point rise the data could not confirm
        _finding("escalation", 0.06, 0.09),
    )
    report = DriftReport("w1", "w2", 0.05, (), findings, 30)
    head = [(g, f.metric) for g, f in report.headline()]
    assert head == [
        ("alarm", "goal"),  # -10 points is twice its 5-point minimum
        ("alarm", "tone"),  # -0.3 levels is 1.2 times its quarter level
        ("significant", "small"),
        ("underpowered", "frustration"),
        ("underpowered", "escalation"),
    ]
    md = report.to_markdown()
    order = [md.index(t) for t in ("## Alarms", "## Significant", "## Large but not", "## Scores")]
    assert order == sorted(order)
    assert md.index("frustration") < md.index("escalation") < md.index("## Scores")
    assert report.summary()["headline"][0]["metric"] == "goal"


def test_min_effects_from_rubrics() -> None:
    class R:
        def __init__(self, name: str, min_effect: float) -> None:
            self.name, self.min_effect = name, min_effect

    assert min_effects_from_rubrics([R("tone", 0.25)]) == {"rubric.tone": 0.25}


def test_invalid_settings() -> None:
    b = binary_window("b", {"retail": 0.8}, 50, 1)
    with pytest.raises(ValueError, match="alpha"):
        compare_windows(b, b, alpha=1.5)
    with pytest.raises(ValueError, match="min_n"):
        compare_windows(b, b, min_n=1)


# --- properties -----------------------------------------------------------------------

KINDS: tuple[ScoreKind, ...] = ("binary", "ordinal", "continuous", "categorical")


@st.composite
def window_pairs(draw: st.DrawFn) -> tuple[Window, Window, ScoreKind]:
    kind = draw(st.sampled_from(KINDS))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    # How the windows were sampled: not at all; the same two probabilities in both; or a
    # routine rate that changed (unequal weights within cells, different between windows).
    weighting = draw(st.sampled_from(["none", "same", "changed"]))
    turn_level = draw(st.booleans()) and kind != "categorical"
    shift = draw(st.floats(-1.0, 1.0))
    out = []
    for a, n in enumerate((draw(st.integers(30, 160)), draw(st.integers(30, 160)))):
        turns = rng.integers(1, 4, n) if turn_level else np.ones(n, int)
        conv = np.repeat(np.arange(n), turns)
        m = conv.size
        s = shift * a
        if kind == "binary":
            vals: np.ndarray = rng.random(m) < 0.6 + 0.2 * s
        elif kind == "ordinal":
            vals = np.clip(np.round(rng.normal(3 + s, 1.2, m)), 1, 5)
        elif kind == "continuous":
            vals = rng.lognormal(s * 0.3, 1.0, m)
        else:
            vals = rng.choice(np.array(["a", "b", "c"]), m, p=[0.5, 0.3, 0.2])
        trigger = rng.random(n) < 0.3
        routine = 0.25 if weighting == "same" or a == 0 else 0.2
        prob = None if weighting == "none" else np.where(trigger, 1.0, routine)
        msg = np.concatenate([np.arange(k) for k in turns]) if turn_level else None
        out.append(
            Window.from_arrays(
                f"w{a}",
                {"s": ScoreArrays(kind, conv, vals, msg)},
                n_conversations=n,
                inclusion_prob=prob,
                tags={"lang": rng.choice(np.array(["de", "en"]), n)},
            )
        )
    return out[0], out[1], kind


@given(window_pairs())
def test_p_values_in_range_and_symmetric_under_swap(
    pair: tuple[Window, Window, ScoreKind],
) -> None:
    b, c, kind = pair
    fwd = compare_windows(b, c, by=("lang",), bootstrap=50, permutations=99, min_n=10)
    rev = compare_windows(c, b, by=("lang",), bootstrap=50, permutations=99, min_n=10)
    assert len(fwd.findings) == len(rev.findings)
    for f, g in zip(fwd.findings, rev.findings, strict=True):
        assert (f.metric, f.cohort_label, f.kind) == (g.metric, g.cohort_label, g.kind)
        for p in (f.p_value, f.p_adjusted):
            assert p is None or 0.0 <= p <= 1.0
        if f.p_value is None:
            assert g.p_value is None
            continue
        # Equal up to rounding: the saddlepoint tail of the Cramér-von Mises test cancels
        # two nearly equal terms near the statistic's mean, where a swap that reorders
        # the sums moved p by 1.6e-6 relative in one example hypothesis found.
        assert g.p_value == pytest.approx(f.p_value, rel=1e-5, abs=1e-12)
        if f.kind == "mix":
            assert g.effect == pytest.approx(f.effect, rel=1e-9, abs=1e-12)
            continue
        assert f.effect is not None and g.effect is not None
        assert g.effect == pytest.approx(-f.effect, rel=1e-9, abs=1e-12)
        assert g.ci_low == pytest.approx(-(f.ci_high or 0), rel=1e-7, abs=1e-10)
        assert g.ci_high == pytest.approx(-(f.ci_low or 0), rel=1e-7, abs=1e-10)
        assert g.alarm == f.alarm


@given(window_pairs(), st.sampled_from([1.0, 0.5, 0.1]))
def test_equal_weights_are_the_same_as_no_weights(
    pair: tuple[Window, Window, ScoreKind], prob: float
) -> None:
    b, c, _ = pair

    def reweighted(w: Window, p: float | None) -> Window:
        # Every conversation and every score row gets the same weight, 1 / p.
        weights = np.ones(w.n_conversations) if p is None else np.full(w.n_conversations, 1 / p)
        cols = {
            k: dataclasses.replace(col, weight=np.full(col.n_rows, weights[0]))
            for k, col in w.scores.items()
        }
        return Window(w.label, w.conversation_ids, weights, w.tags, cols)

    plain = compare_windows(reweighted(b, None), reweighted(c, None), bootstrap=20, min_n=10)
    same = compare_windows(reweighted(b, prob), reweighted(c, prob), bootstrap=20, min_n=10)
    for f, g in zip(plain.findings, same.findings, strict=True):
        assert f.p_value == pytest.approx(g.p_value, rel=1e-9, abs=1e-12)
        assert f.effect == pytest.approx(g.effect, rel=1e-9, abs=1e-12)
        assert f.ci_low == pytest.approx(g.ci_low, rel=1e-9, abs=1e-12)


@given(
    st.lists(st.floats(0.01, 1.0), min_size=1, max_size=6).flatmap(
        lambda s: st.tuples(
            st.just(s),
            st.lists(st.floats(0.01, 1.0), min_size=len(s), max_size=len(s)),
            st.lists(st.floats(-5, 5), min_size=len(s), max_size=len(s)),
            st.lists(st.floats(-5, 5), min_size=len(s), max_size=len(s)),
        )
    )
)
def test_kitagawa_identity(
    data: tuple[list[float], list[float], list[float], list[float]],
) -> None:
    from convsim.stats.drift import kitagawa_decomposition

    s0, s1, m0, m1 = data
    w0 = np.asarray(s0) / sum(s0)
    w1 = np.asarray(s1) / sum(s1)
    d = kitagawa_decomposition(w0, m0, w1, m1)
    total = float(w1 @ np.asarray(m1) - w0 @ np.asarray(m0))
    assert d.mix + d.within == pytest.approx(total, abs=1e-9)
    assert d.total == pytest.approx(total, abs=1e-9)
    assert math.isfinite(d.mix)


# --- clusters above the conversation (users) ------------------------------------------


def _user_window(label: str, values: np.ndarray, users: np.ndarray) -> Window:
    n = values.size
    return Window.from_arrays(
        label,
        {"pass": ScoreArrays("binary", np.arange(n), values)},
        n_conversations=n,
        tags={"user": [f"u{u}" for u in users]},
    )


def test_users_with_identical_conversations_double_the_variance() -> None:
    # Every user has two conversations with the same outcome: with users as clusters the
    # variance of the pass-rate difference is exactly twice the conversation-level one.
    rng = np.random.default_rng(3)
    out = []
    for label, p, first in (("b", 0.7, 0), ("c", 0.6, 1000)):
        per_user = (rng.random(300) < p).astype(float)
        ids = np.repeat(np.arange(first, first + 300), 2)
        out.append(_user_window(label, np.repeat(per_user, 2), ids))
    plain = compare_windows(out[0], out[1], bootstrap=0).findings[0]
    by_user = compare_windows(out[0], out[1], bootstrap=0, cluster="user").findings[0]
    assert by_user.effect == pytest.approx(plain.effect)
    assert by_user.se == pytest.approx(math.sqrt(2) * (plain.se or 0), rel=1e-9)
    assert by_user.statistic == pytest.approx((plain.statistic or 0) / math.sqrt(2), rel=1e-9)
    # The MDE grows by about sqrt(2) too (not exactly: the allowance for the variance at
    # the moved rate is evaluated at a larger move).
    assert (by_user.mde or 0) == pytest.approx(math.sqrt(2) * (plain.mde or 0), rel=0.02)


def test_singleton_clusters_change_nothing() -> None:
    rng = np.random.default_rng(5)
    b = _user_window("b", (rng.random(150) < 0.7).astype(float), np.arange(150))
    c = _user_window("c", (rng.random(80) < 0.6).astype(float), np.arange(1000, 1080))
    plain = compare_windows(b, c, bootstrap=100)
    users = compare_windows(b, c, bootstrap=100, cluster="user")
    for f, g in zip(plain.findings, users.findings, strict=True):
        assert (f.p_value, f.effect, f.ci_low, f.ci_high, f.test) == (
            g.p_value,
            g.effect,
            g.ci_low,
            g.ci_high,
            g.test,
        )


@given(window_pairs(), st.integers(2, 6))
def test_clustered_p_values_in_range_and_symmetric(
    pair: tuple[Window, Window, ScoreKind], per_user: int
) -> None:
    b, c, _ = pair

    def with_users(w: Window, offset: int) -> Window:
        n = w.n_conversations
        codes = (np.arange(n) // per_user).astype(np.int64)
        from convsim.stats.drift import Tag

        labels = tuple(f"u{offset + i}" for i in range(int(codes.max()) + 1))
        tags = {**w.tags, "user": Tag(codes, labels)}
        return Window(w.label, w.conversation_ids, w.weights, tags, w.scores)

    # Overlapping user ids: some users appear in both windows.
    b2, c2 = with_users(b, 0), with_users(c, 5)
    fwd = compare_windows(b2, c2, by=("lang",), bootstrap=50, min_n=10, cluster="user")
    rev = compare_windows(c2, b2, by=("lang",), bootstrap=50, min_n=10, cluster="user")
    for f, g in zip(fwd.findings, rev.findings, strict=True):
        for p in (f.p_value, f.p_adjusted):
            assert p is None or 0.0 <= p <= 1.0
        if f.p_value is None or g.p_value is None:
            assert f.p_value == g.p_value
            continue
        assert g.p_value == pytest.approx(f.p_value, rel=1e-7, abs=1e-12)
        if f.kind != "mix":
            assert g.effect == pytest.approx(-(f.effect or 0), rel=1e-9, abs=1e-12)
            assert g.ci_low == pytest.approx(-(f.ci_high or 0), rel=1e-7, abs=1e-10)
        else:
            assert g.ci_low == pytest.approx(f.ci_low, rel=1e-7, abs=1e-10)
