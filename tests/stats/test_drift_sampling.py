"""Drift on sampled windows: every stratum is compared, whatever the sampling rates."""

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
    rules: bool = True,
    seed: int,
    lang: str | None = None,
) -> Window:
    """A window sampled like the online sampler does: escalations at 100%, the rest at a rate."""
    rng = np.random.default_rng(seed)
    escalated = rng.random(n_pop) < escalated_share
    prob = np.where(escalated, 1.0, routine_rate)
    keep = np.flatnonzero(rng.random(n_pop) < prob)
    esc = escalated[keep]
    p = np.where(esc, pass_rate["escalated"], pass_rate["routine"])
    values = rng.random(keep.size) < p
    langs = rng.choice(np.array(["de", "en"]), keep.size) if lang is None else None
    return Window.from_arrays(
        label,
        {"goal": ScoreArrays("binary", np.arange(keep.size), values)},
        conversation_ids=[f"{label}-{i}" for i in keep],
        inclusion_prob=prob[keep],
        sampling_rule=np.where(esc, "trigger:escalated", "default") if rules else None,
        tags={"lang": langs if langs is not None else np.full(keep.size, lang)},
    )


RATES = {"routine": 0.9, "escalated": 0.5}
DROP = {"routine": 0.8, "escalated": 0.5}


@pytest.mark.parametrize("rules", [True, False])
def test_a_changed_routine_rate_is_still_compared(rules: bool) -> None:
    # Routine traffic at 10% then 8%, escalations at 100%: the routine pass rate falls
    # from 90% to 80%. Before, no stratum matched and the report said "insufficient".
    b = sampled_window("w1", 30_000, routine_rate=0.1, pass_rate=RATES, rules=rules, seed=1)
    c = sampled_window("w2", 30_000, routine_rate=0.08, pass_rate=DROP, rules=rules, seed=2)
    f = compare_windows(b, c, bootstrap=0).findings[0]
    assert f.kind == "score" and f.alarm
    assert f.n_baseline == b.n_conversations and f.n_current == c.n_conversations
    # The true population change is 0.9 x -0.10 = -0.09.
    assert f.effect == pytest.approx(-0.09, abs=0.025)
    assert ("sampling strata differ" in f.note) is not rules


def test_with_rules_a_change_in_the_escalation_share_is_not_a_change_in_quality() -> None:
    # Escalations (which pass less) go from 5% to 30% of traffic; nothing changes within
    # either kind of conversation. Compared within each sampling rule, nothing moved;
    # the population pass rate did fall by 0.25 x 0.4 = 10 points, all of it mix.
    b = sampled_window(
        "w1", 40_000, routine_rate=0.1, pass_rate=RATES, escalated_share=0.05, seed=3
    )
    c = sampled_window(
        "w2", 40_000, routine_rate=0.1, pass_rate=RATES, escalated_share=0.30, seed=4
    )
    f = compare_windows(b, c, bootstrap=0).findings[0]
    assert f.kind == "score" and not f.alarm
    assert f.effect is not None and abs(f.effect) < 0.03
    assert f.decomposition is not None and f.decomposition.total < -0.07


def test_a_whole_cell_is_the_difference_of_its_hajek_estimates() -> None:
    # No rule named and the probabilities changed: the cell is compared as a whole, and
    # each window is estimated with its weights (Hajek), like `convsim online` does.
    b = sampled_window("w1", 20_000, routine_rate=0.1, pass_rate=RATES, rules=False, seed=5)
    c = sampled_window("w2", 20_000, routine_rate=0.08, pass_rate=DROP, rules=False, seed=6)
    f = compare_windows(b, c, bootstrap=0).findings[0]
    est = [
        weighted_estimate(w.scores["goal"].values, 1 / w.scores["goal"].weight).estimate
        for w in (b, c)
    ]
    assert f.effect == pytest.approx(est[1] - est[0], rel=1e-9)
    assert f.baseline is not None and f.baseline.estimate == pytest.approx(est[0], rel=1e-9)


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
    assert w.scores["rubric.goal"].sampling_keys == ("default",)
    assert set(w.scores["pii"].weight.tolist()) == {1.0}
    assert w.scores["pii"].sampling_keys == ("p=1",)


def test_conversations_of_cells_seen_in_one_window_are_counted() -> None:
    b = sampled_window("w1", 10_000, routine_rate=0.2, pass_rate=RATES, seed=7, lang="en")
    extra = sampled_window("w2x", 3_000, routine_rate=0.2, pass_rate=RATES, seed=8, lang="fr")
    c = sampled_window("w2", 10_000, routine_rate=0.2, pass_rate=RATES, seed=9, lang="en")
    merged = Window.from_scores(
        [*_scores(c), *_scores(extra)],
        "w2",
    )
    out = compare_windows(b, merged, by=("lang",), bootstrap=0)
    f = out.findings[0]
    n_fr = extra.n_conversations
    assert f.n_current == c.n_conversations + n_fr
    assert f"0 baseline and {n_fr} current conversations are in cohort cells seen" in f.note
    fr = next(x for x in out.findings if x.cohort_label == "lang=fr")
    assert fr.kind == "insufficient"


def _scores(w: Window) -> list[Score]:
    col = w.scores["goal"]
    lang = w.tag_values("lang")
    keys = np.asarray(col.sampling_keys)[col.sampling]
    return [
        Score(
            conversation_id=str(w.conversation_ids[i]),
            name="goal",
            value=bool(v),
            kind="binary",
            tags={"lang": str(lang[i])},
            inclusion_prob=float(1 / wt),
            sampling_rule=str(k),
            window=w.label,
        )
        for i, v, wt, k in zip(col.conversation, col.values, col.weight, keys, strict=True)
    ]
