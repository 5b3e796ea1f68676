from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convsim.online import (
    Budget,
    Decision,
    Filter,
    Rule,
    SamplingPolicy,
    decide,
    load_policy,
    sampling_draw,
    stamp_scores,
    summarize,
)
from convsim.trace import Conversation, Score

from ._make import EXAMPLE, convo

ROOT = Path(__file__).parents[2]

# Sampled shares must lie within this many binomial standard errors of the rate. With
# about ten rule checks per run, 4 SE leaves a chance of about 1 in 1,500 that a correct
# sampler fails (and the ids are fixed, so the outcome is the same on every run).
SHARE_TOLERANCE_SE = 4.0


def example_policy(**update: object) -> SamplingPolicy:
    return load_policy(EXAMPLE).model_copy(update={"budget": None, **update})


def key(decisions: Sequence[Decision]) -> list[tuple[str, bool, str, float, float]]:
    return [(d.conversation_id, d.sampled, d.rule, d.rate, d.inclusion_prob) for d in decisions]


# --- the draw ----------------------------------------------------------------------------


def test_draw_is_sha256_of_salt_and_id() -> None:
    # Pinned: changing the hash would silently re-draw every sample and break the
    # correlation with decisions already logged.
    assert sampling_draw("conv-1") == 0.8672456838664928
    assert sampling_draw("conv-1", "online-v1") == 0.026949588074288933
    assert int("de03d029cdc2035c", 16) / 2**64 == pytest.approx(sampling_draw("conv-1"))


def test_decisions_are_identical_across_runs(window: list[Conversation]) -> None:
    policy = example_policy()
    first = decide(window[:3000], policy)
    second = decide(iter(window[:3000]), load_policy(EXAMPLE).model_copy(update={"budget": None}))
    assert first == second


def test_decisions_are_identical_in_another_process(
    window: list[Conversation], tmp_path: Path
) -> None:
    sample = window[:300]
    data = tmp_path / "window.jsonl"
    data.write_text("".join(c.model_dump_json() + "\n" for c in sample), encoding="utf-8")
    script = (
        "import json, sys\n"
        "from convsim.online import decide, load_policy\n"
        "from convsim.trace import Conversation\n"
        "lines = open(sys.argv[1], encoding='utf-8').read().splitlines()\n"
        "window = [Conversation.model_validate_json(line) for line in lines]\n"
        "policy = load_policy(sys.argv[2]).model_copy(update={'budget': None})\n"
        "print(json.dumps([d.model_dump(mode='json') for d in decide(window, policy)]))\n"
    )
    # A different string-hash seed than this process: decisions must not depend on it.
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(data), str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    theirs = [Decision.model_validate(d) for d in json.loads(out.stdout)]
    assert theirs == decide(sample, example_policy())


# --- rates -------------------------------------------------------------------------------


def test_sampled_share_per_rule_matches_its_rate(window: list[Conversation]) -> None:
    report = summarize(decide(window, example_policy()))
    assert report.total == len(window)
    assert report.budget_skipped == 0
    checked = 0
    for tally in report.by_rule.values():
        if tally.rate in (0.0, 1.0):
            assert tally.sampled == (tally.seen if tally.rate == 1.0 else 0), tally
            continue
        assert tally.seen >= 500, f"{tally.rule} takes too few conversations to test"
        se = math.sqrt(tally.rate * (1 - tally.rate) / tally.seen)
        assert abs(tally.share - tally.rate) <= SHARE_TOLERANCE_SE * se, tally
        checked += 1
    assert set(report.by_rule) >= {
        "trigger:escalated",
        "trigger:thumbs_down",
        "outlier:latency",
        "new_flow",
        "tool_calls",
        "non_english",
        "default",
    }
    assert checked == 4


def test_samples_nest_across_rates() -> None:
    """A conversation sampled at a low rate is sampled at every higher rate."""
    window = [convo(f"conv-{i}") for i in range(4000)]
    picked = []
    for rate in [0.05, 0.1, 0.3, 0.5, 0.9]:
        policy = SamplingPolicy(default_rate=rate)
        picked.append({d.conversation_id for d in decide(window, policy) if d.sampled})
    for low, high in zip(picked, picked[1:], strict=False):
        assert low < high
    # Two graders with the same salt agree exactly; a new salt draws a fresh sample whose
    # overlap with the old one is what independence predicts (0.3 * 0.3 of 4000 = 360).
    fresh = SamplingPolicy(default_rate=0.3, salt="reshuffle")
    resampled = {d.conversation_id for d in decide(window, fresh) if d.sampled}
    overlap = len(resampled & picked[2])
    assert abs(overlap - 360) <= 4 * math.sqrt(4000 * 0.09 * 0.91)


# --- budget ------------------------------------------------------------------------------


def test_budget_caps_judging_and_reports_skips(window: list[Conversation]) -> None:
    window = window[:6000]
    unlimited = decide(window, example_policy())
    sampled = sum(d.sampled for d in unlimited)
    priority = sum(d.sampled and d.rule.startswith(("trigger:", "outlier:")) for d in unlimited)
    cap = (sampled + priority) // 2
    capped = decide(window, example_policy(budget=Budget(max_judged=cap)))

    assert [d.sampled for d in capped] == [d.sampled for d in unlimited], "sampling unchanged"
    report = summarize(capped)
    assert report.judged == cap
    assert report.budget_skipped == sampled - cap
    assert report.skipped_ids == [d.conversation_id for d in capped if d.budget_skipped]
    for d in capped:
        if d.rule.startswith(("trigger:", "outlier:")):
            assert d.judged and d.inclusion_prob == d.rate, "triggers and outliers go first"
    rule_tier = [d for d in capped if not d.rule.startswith(("trigger:", "outlier:"))]
    scales = {d.inclusion_prob / d.rate for d in rule_tier if d.rate > 0}
    [scale] = {round(s, 12) for s in scales}
    assert 0 < scale < 1
    for d in rule_tier:
        assert d.judged == (d.draw < d.inclusion_prob), d
        assert d.status == (
            "judge" if d.judged else "skipped_budget" if d.sampled else "not_sampled"
        )


def test_budget_thins_every_rule_by_the_same_factor(window: list[Conversation]) -> None:
    capped = decide(window, example_policy(budget=Budget(max_judged=2500)))
    for tally in summarize(capped).by_rule.values():
        if tally.rule.startswith(("trigger:", "outlier:")):
            continue
        share = tally.judged / tally.seen
        expected = next(d.inclusion_prob for d in capped if d.rule == tally.rule)
        se = math.sqrt(expected * (1 - expected) / tally.seen)
        assert abs(share - expected) <= SHARE_TOLERANCE_SE * se, tally


def test_budget_below_the_trigger_count_thins_triggers_and_skips_the_rest() -> None:
    window = [convo(f"e{i}", escalated=True) for i in range(40)]
    window += [convo(f"r{i}") for i in range(200)]
    policy = SamplingPolicy(default_rate=1.0, budget=Budget(max_judged=10))
    decisions = decide(window, policy)
    judged = [d for d in decisions if d.judged]
    assert len(judged) == 10
    assert all(d.rule == "trigger:escalated" for d in judged)
    assert all(d.inclusion_prob == 0 and d.budget_skipped for d in decisions[40:])
    assert all(0 < d.inclusion_prob < 1 for d in decisions[:40])


def test_cost_budget_uses_the_cost_model() -> None:
    window = [convo(f"c{i}", tokens=2000) for i in range(50)]
    budget = Budget(max_cost_usd=1.0, cost_per_conversation_usd=0.05, cost_per_1k_tokens_usd=0.025)
    decisions = decide(window, SamplingPolicy(default_rate=1.0, budget=budget))
    assert {d.est_cost_usd for d in decisions} == {0.1}
    report = summarize(decisions)
    assert report.judged == 10
    assert report.judged_cost_usd == pytest.approx(1.0)
    assert report.skipped_cost_usd == pytest.approx(4.0)
    assert decide(window, SamplingPolicy(default_rate=1.0))[0].est_cost_usd is None


# --- scores ------------------------------------------------------------------------------


def test_stamp_scores_sets_inclusion_probability_of_judge_scores() -> None:
    policy = SamplingPolicy(default_rate=0.5)
    window = [convo(f"c{i}") for i in range(40)]
    decisions = decide(window, policy)
    judged = next(d for d in decisions if d.judged)
    skipped = next(d for d in decisions if not d.sampled)
    judge = Score(conversation_id=judged.conversation_id, name="tone", value=True, kind="binary")
    judge = judge.model_copy(update={"source": "model"})
    check = Score(conversation_id=skipped.conversation_id, name="pii", value=False, kind="binary")
    stamped = stamp_scores([judge, check], decisions, window="2026-W13")
    assert stamped[0].inclusion_prob == 0.5 and stamped[0].window == "2026-W13"
    assert stamped[1].inclusion_prob is None and stamped[1].window == "2026-W13"
    stray = judge.model_copy(update={"conversation_id": skipped.conversation_id})
    with pytest.raises(ValueError, match="which was not sampled"):
        stamp_scores([stray], decisions)


# --- properties --------------------------------------------------------------------------

rates = st.floats(min_value=0, max_value=1)
ids = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30, unique=True)


@given(ids=ids, default=rates, rule_rate=rates, cap=st.none() | st.integers(0, 40))
def test_inclusion_probabilities_are_probabilities(
    ids: list[str], default: float, rule_rate: float, cap: int | None
) -> None:
    policy = SamplingPolicy(
        rules=[Rule(name="fr", filter=Filter(language=["fr"]), rate=rule_rate)],
        default_rate=default,
        budget=Budget(max_judged=cap) if cap is not None else None,
    )
    window = [convo(cid, tags={"language": "fr" if n % 2 else "en"}) for n, cid in enumerate(ids)]
    for d in decide(window, policy):
        assert 0 <= d.inclusion_prob <= d.rate <= 1
        assert d.sampled == (d.draw < d.rate)
        if d.judged:
            assert 0 < d.inclusion_prob <= 1
            assert d.draw < d.inclusion_prob


@given(ids=ids, low=rates, high=rates, salt=st.text(max_size=5))
def test_decisions_are_monotone_in_the_rate(
    ids: list[str], low: float, high: float, salt: str
) -> None:
    low, high = sorted((low, high))
    window = [convo(cid) for cid in ids]
    at_low = decide(window, SamplingPolicy(default_rate=low, salt=salt))
    at_high = decide(window, SamplingPolicy(default_rate=high, salt=salt))
    for a, b in zip(at_low, at_high, strict=True):
        assert a.draw == b.draw
        assert not a.sampled or b.sampled


@given(ids=ids, cap=st.integers(0, 30))
def test_a_larger_budget_judges_a_superset(ids: list[str], cap: int) -> None:
    window = [convo(cid, escalated=n % 5 == 0) for n, cid in enumerate(ids)]
    small = decide(window, SamplingPolicy(default_rate=0.6, budget=Budget(max_judged=cap)))
    large = decide(window, SamplingPolicy(default_rate=0.6, budget=Budget(max_judged=cap + 1)))
    assert sum(d.judged for d in small) == min(cap, sum(d.sampled for d in small))
    for a, b in zip(small, large, strict=True):
        assert not a.judged or b.judged
