"""Two weeks of synthetic traffic through the whole online path, read back as drift windows.

What `convsim online` and `convsim drift` do, week after week, in one call: sample each
week with a policy, run the checks on every conversation and the judge on the sample
and on the anchor set, write everything to a store, and read the windows back with
``Window.from_scores``. The drift studies (``bench/drift_pipeline.py`` and the slow
tests) compare the windows this returns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import anyio

from ..online import Anchors, Budget, Filter, Rule, SamplingPolicy, grade_window
from ..stats.drift import Window
from ..store import SQLiteStore
from ._traffic import JudgeProfile, TrafficChecks, TrafficConfig, TrafficJudge, traffic_weeks

WEEKS = ("2026-W47", "2026-W48")
"""Window labels of the two weeks."""

NULL_SCENARIOS = ("rate", "budget", "new-rule")
"""No-change weeks whose sampling differs: routine traffic judged at 15% then 12%; a
judging cap that binds in week 2 only, scaling every rate down; a rule added in week 2."""


def study_policy(routine: float, *, banking: float | None = None) -> SamplingPolicy:
    """Escalations at 100% (the default trigger), travel at 30%, the rest at ``routine``.

    Args:
        routine: The default rate.
        banking: With a rate, a rule that judges the banking vertical at it.

    Returns:
        The policy, with an anchor set of 300.
    """
    rules = [Rule(name="travel", filter=Filter(tags={"vertical": "travel"}), rate=0.3)]
    if banking is not None:
        rules.append(
            Rule(name="banking", filter=Filter(tags={"vertical": "banking"}), rate=banking)
        )
    return SamplingPolicy(default_rate=routine, rules=rules, anchors=Anchors(size=300))


@dataclass(frozen=True)
class WeekPair:
    """One replication's scenario: the traffic, each week's policy and judge."""

    cfg: TrafficConfig
    """The traffic of both weeks."""
    policies: tuple[SamplingPolicy, SamplingPolicy]
    """Each week's sampling policy."""
    judges: tuple[JudgeProfile, JudgeProfile] = (JudgeProfile(), JudgeProfile())
    """Each week's judge (same model name and prompt hash whatever the profile)."""
    budget_share: float | None = None
    """Week 2's judging cap as a share of what week 1 judged (None: no cap)."""


def null_pair(i: int, *, user_ids: bool = True) -> WeekPair:
    """The no-change scenario of replication ``i``; they rotate over :data:`NULL_SCENARIOS`.

    Args:
        i: Replication index.
        user_ids: Whether the conversations carry their user ids.

    Returns:
        The scenario.
    """
    kind = NULL_SCENARIOS[i % len(NULL_SCENARIOS)]
    cfg = TrafficConfig(user_ids=user_ids)
    if kind == "rate":
        return WeekPair(cfg, (study_policy(0.15), study_policy(0.12)))
    if kind == "budget":
        return WeekPair(cfg, (study_policy(0.15), study_policy(0.15)), budget_share=0.8)
    return WeekPair(cfg, (study_policy(0.15), study_policy(0.15, banking=0.5)))


def graded_windows(
    pair: WeekPair, seed: int, store_path: str | os.PathLike[str]
) -> tuple[Window, Window]:
    """Sample, grade and store both weeks, then read them back as drift windows.

    Args:
        pair: The scenario.
        seed: Replication seed of the traffic.
        store_path: A new SQLite store file.

    Returns:
        ``(week 1, week 2)``, as ``convsim drift`` reads them from the store.
    """
    weeks = traffic_weeks(pair.cfg, seed, labels=("a", "b"))
    policies = list(pair.policies)
    with SQLiteStore(store_path) as store:
        for k, label in enumerate(WEEKS):

            async def grade(k: int = k, label: str = label) -> Any:
                return await grade_window(
                    lambda: weeks[k],
                    policies[k],
                    window=label,
                    checks=[TrafficChecks()],
                    judges=[TrafficJudge(pair.judges[k], call_seed=label)],
                    store=store,
                )

            result = anyio.run(grade)
            if k == 0 and pair.budget_share is not None:
                judged = sum(d.judged for d in result.decisions)
                cap = Budget(max_judged=int(pair.budget_share * judged))
                policies[1] = policies[1].model_copy(update={"budget": cap})
        return (
            Window.from_scores(store.scores(window=WEEKS[0]), WEEKS[0]),
            Window.from_scores(store.scores(window=WEEKS[1]), WEEKS[1]),
        )
