"""Drift on sampled windows: every conversation is compared, whatever the sampling rates."""

from __future__ import annotations

import numpy as np
import pytest

from convsim.online import weighted_estimate
from convsim.stats.drift import ScoreArrays, Window, compare_windows
from convsim.trace import Score


def sampled_window(
    label: str,
    n_pop: int,
    *,
    routine_rate: float,
    pass_rate: dict[str, float],
    escalated_share: float = 0.1,
    seed: int,
    lang: str | None = None,
) -> Window:
    """A window sampled like the online sampler does: escalations at 100%, the rest at a rate.

    ``goal`` is judged on the sample; ``resolved``, the same truth, runs on every
    conversation (a census score).
    """
    rng = np.random.default_rng(seed)
    escalated = rng.random(n_pop) < escalated_share
    prob = np.where(escalated, 1.0, routine_rate)
    truth = rng.random(n_pop) < np.where(escalated, pass_rate["escalated"], pass_rate["routine"])
    keep = np.flatnonzero(rng.random(n_pop) < prob)
    langs = rng.choice(np.array(["de", "en"]), n_pop) if lang is None else np.full(n_pop, lang)
    return Window.from_arrays(
        label,
        {
            "goal": ScoreArrays("binary", keep, truth[keep], inclusion_prob=prob[keep]),
            "resolved": ScoreArrays("binary", np.arange(n_pop), truth),
        },
        conversation_ids=[f"{label}-{i}" for i in range(n_pop)],
        tags={"lang": langs},
    )


RATES = {"routine": 0.9, "escalated": 0.5}
DROP = {"routine": 0.8, "escalated": 0.5}


def finding(w0: Window, w1: Window, name: str) -> object:
    return next(f for f in compare_windows(w0, w1, bootstrap=0).findings if f.metric == name)


def test_a_changed_routine_rate_is_still_compared() -> None:
    # Routine traffic judged at 10% then 8%, escalations at 100%: the routine pass rate
    # falls from 90% to 80%. Before, no stratum matched and the report said
    # "insufficient data", with 0 alarms.
    b = sampled_window("w1", 30_000, routine_rate=0.1, pass_rate=RATES, seed=1)
    c = sampled_window("w2", 30_000, routine_rate=0.08, pass_rate=DROP, seed=2)
    out = compare_windows(b, c, bootstrap=0)
    goal = next(f for f in out.findings if f.metric == "goal")
    assert goal.kind == "score" and goal.alarm
    assert goal.n_baseline == b.scores["goal"].n_rows and goal.n_current == c.scores["goal"].n_rows
    # The population change is 0.9 x -0.10 = -0.09, which the census sees directly.
    assert goal.effect == pytest.approx(-0.09, abs=0.025)
    resolved = next(f for f in out.findings if f.metric == "resolved")
    assert goal.effect == pytest.approx(resolved.effect, abs=0.025)


def test_the_sample_and_the_census_agree_when_the_share_of_escalations_moves() -> None:
    # Escalations (which pass less) go from 5% to 30% of traffic; nothing changes within
    # either kind of conversation. The population pass rate falls by 0.25 x 0.4 = 10
    # points. The judged sample (escalations at 100%, the rest at 10%) and the census
    # must say the same: the sampling design changes the precision, never the answer.
    b = sampled_window(
        "w1", 40_000, routine_rate=0.1, pass_rate=RATES, escalated_share=0.05, seed=3
    )
    c = sampled_window("w2", 40_000, routine_rate=0.1, pass_rate=RATES, escalated_share=0.3, seed=4)
    out = compare_windows(b, c, bootstrap=0)
    goal = next(f for f in out.findings if f.metric == "goal")
    resolved = next(f for f in out.findings if f.metric == "resolved")
    assert goal.effect == pytest.approx(-0.10, abs=0.02)
    assert resolved.effect == pytest.approx(-0.10, abs=0.01)
    assert goal.alarm and resolved.alarm


def test_each_window_is_its_weighted_hajek_estimate() -> None:
    b = sampled_window("w1", 20_000, routine_rate=0.1, pass_rate=RATES, seed=5)
    c = sampled_window("w2", 20_000, routine_rate=0.08, pass_rate=DROP, seed=6)
    f = next(f for f in compare_windows(b, c, bootstrap=0).findings if f.metric == "goal")
    est = [
        weighted_estimate(w.scores["goal"].values, 1 / w.scores["goal"].weight).estimate
        for w in (b, c)
    ]
    assert f.effect == pytest.approx(est[1] - est[0], rel=1e-9)
    assert f.baseline is not None and f.baseline.estimate == pytest.approx(est[0], rel=1e-9)
    assert f.current is not None and f.current.estimate == pytest.approx(est[1], rel=1e-9)


def test_the_judges_keep_their_weights_when_census_scores_come_first() -> None:
    # An online window lists the guardrails (every conversation) before the judges (a
    # sample); each score keeps its own weight.
    scores = []
    for i in range(40):
        scores.append(Score(conversation_id=f"c{i}", name="pii", value=False, kind="binary"))
        scores.append(
            Score(
                conversation_id=f"c{i}",
                name="rubric.goal",
                value=True,
                kind="binary",
                source="model",
                inclusion_prob=0.1,
                sampling_rule="default",
            )
        )
    w = Window.from_scores(scores, "w")
    assert set(w.scores["rubric.goal"].weight.tolist()) == {10.0}
    assert set(w.scores["pii"].weight.tolist()) == {1.0}


def test_conversations_of_cells_seen_in_one_window_are_counted() -> None:
    b = sampled_window("w1", 10_000, routine_rate=0.2, pass_rate=RATES, seed=7, lang="en")
    extra = sampled_window("w2x", 3_000, routine_rate=0.2, pass_rate=RATES, seed=8, lang="fr")
    c = sampled_window("w2", 10_000, routine_rate=0.2, pass_rate=RATES, seed=9, lang="en")
    merged = Window.from_scores([*_scores(c), *_scores(extra)], "w2")
    out = compare_windows(b, merged, by=("lang",), bootstrap=0)
    f = next(x for x in out.findings if x.metric == "goal" and x.cohort == "all")
    n_fr = extra.scores["goal"].n_rows
    assert f.n_current == c.scores["goal"].n_rows + n_fr
    assert f"0 baseline and {n_fr} current conversations are in cohort cells seen" in f.note
    fr = next(x for x in out.findings if x.metric == "goal" and x.cohort_label == "lang=fr")
    assert fr.kind == "insufficient"


def _scores(w: Window) -> list[Score]:
    col = w.scores["goal"]
    lang = w.tag_values("lang")
    return [
        Score(
            conversation_id=str(w.conversation_ids[i]),
            name="goal",
            value=bool(v),
            kind="binary",
            tags={"lang": str(lang[i])},
            inclusion_prob=float(1 / wt),
            window=w.label,
        )
        for i, v, wt in zip(col.conversation, col.values, col.weight, strict=True)
    ]
