"""Drift through the whole online path: sampler, graders, store, windows, comparison.

The full studies are in bench/drift_pipeline.py (docs/statistics.md has their tables).
Here: one replication of each scenario on every test run, and reduced, seeded studies
under the slow marker (`pytest -m slow`, run by CI). Bands are +-3 binomial standard
errors of a rate from R replications, so a correct engine fails them by chance less than
0.3% of the time per check, and the seeds are fixed.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convsim.stats.drift import compare_windows
from convsim.testing import (
    JudgeProfile,
    TrafficConfig,
    WeekPair,
    graded_windows,
    null_pair,
    study_policy,
)

ALPHA = 0.05
BY = ("language", "vertical")
SWAPPED = JudgeProfile(specificity=0.4, tone_bias=1.0)
"""A judge that passes far more failing conversations and reads tone higher, under the
same model name and prompt hash."""
JUDGED = ("rubric.goal", "rubric.policy", "rubric.tone")


def band(p: float, r: int) -> tuple[float, float]:
    se = math.sqrt(p * (1 - p) / r)
    return p - 3 * se, p + 3 * se


def test_a_no_change_week_pair_goes_through_the_whole_pipeline(tmp_path: Path) -> None:
    # The routine rate changed (15% -> 12%): everything is still compared, weighted,
    # clustered by the users' ids, with the anchor set stable.
    b, c = graded_windows(null_pair(0), 1, tmp_path / "s.db")
    assert set(b.names) == {"check.resolved", "meta.latency_ms", *JUDGED}
    goal = b.scores["rubric.goal"]
    assert goal.n_rows < b.scores["check.resolved"].n_rows  # judged on a sample
    assert set(np.round(1 / goal.weight, 6)) >= {1.0, 0.3, 0.15}
    assert set(np.round(1 / c.scores["rubric.goal"].weight, 6)) >= {1.0, 0.3, 0.12}
    assert b.anchors is not None and c.anchors is not None
    assert b.anchors.scores["rubric.goal"].n_rows == c.anchors.scores["rubric.goal"].n_rows == 300
    report = compare_windows(b, c, by=BY)
    assert report.clustering.startswith("by user_id") and not report.caveats
    assert not any(f.kind == "insufficient" and f.cohort == "all" for f in report.findings)
    judge = [f for f in report.findings if f.kind == "judge"]
    assert {f.metric for f in judge} == set(JUDGED)
    assert all(f.judge_status == "stable on the anchors" for f in judge)


def test_a_judge_swap_behind_an_unchanged_name_is_attributed_to_the_judge(tmp_path: Path) -> None:
    pair = WeekPair(
        TrafficConfig(), (study_policy(0.15), study_policy(0.15)), judges=(JudgeProfile(), SWAPPED)
    )
    b, c = graded_windows(pair, 2, tmp_path / "s.db")
    report = compare_windows(b, c, by=BY)
    for name in JUDGED:
        judge = next(f for f in report.findings if f.kind == "judge" and f.metric == name)
        assert judge.judge_status == "judge drift" and judge.alarm
        assert not any(f.alarm for f in report.findings if f.kind == "score" and f.metric == name)
    # Without the anchors the same weeks show product changes on the judged scores.
    blind = compare_windows(
        dataclasses.replace(b, anchors=None), dataclasses.replace(c, anchors=None), by=BY
    )
    for name in ("rubric.goal", "rubric.tone"):
        assert next(f for f in blind.findings if f.metric == name).alarm, name


def test_without_user_ids_the_report_says_what_it_assumed(tmp_path: Path) -> None:
    b, c = graded_windows(null_pair(1, user_ids=False), 3, tmp_path / "s.db")
    report = compare_windows(b, c, by=BY)
    assert report.clustering == "no user ids in either window"
    assert "assume independent conversations" in report.caveats[0]
    assert "Caveat" in report.to_markdown()


# --- reduced studies (slow) -------------------------------------------------------------


def _parallel(fn: Callable[[int], Any], n: int) -> list[Any]:
    with mp.get_context("fork").Pool(2) as pool:
        return list(pool.imap(fn, range(n), chunksize=2))


def _null(i: int) -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        b, c = graded_windows(null_pair(i), 10_000 + i, Path(d) / "s.db")
    rep = compare_windows(b, c, by=BY, bootstrap=0)
    primary = {
        f.metric: f.p_value is not None and f.p_value <= ALPHA
        for f in rep.findings
        if f.family == "primary"
    }
    return {
        "primary": primary,
        "fwer": any(f.significant for f in rep.findings if f.family == "primary"),
    }


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a study of minutes; the 300 s default is for unit tests
def test_no_change_weeks_alarm_at_alpha_through_the_pipeline() -> None:
    # R = 300 pairs over the three no-change scenarios whose sampling differs between
    # the weeks (a changed rate, a budget cap binding in week 2, a rule added).
    r = 300
    res = _parallel(_null, r)
    lo, hi = band(ALPHA, r)
    rates = {name: float(np.mean([x["primary"][name] for x in res])) for name in res[0]["primary"]}
    assert len(rates) == 5 and all(lo <= v <= hi for v in rates.values()), rates
    pooled = float(np.mean([v for x in res for v in x["primary"].values()]))
    assert band(ALPHA, 5 * r)[0] <= pooled <= band(ALPHA, 5 * r)[1], pooled
    assert float(np.mean([x["fwer"] for x in res])) <= hi


def _swap(i: int) -> dict[str, bool]:
    import tempfile

    pair = WeekPair(
        TrafficConfig(), (study_policy(0.15), study_policy(0.12)), judges=(JudgeProfile(), SWAPPED)
    )
    with tempfile.TemporaryDirectory() as d:
        b, c = graded_windows(pair, 20_000 + i, Path(d) / "s.db")
    rep = compare_windows(b, c, by=BY, bootstrap=0)
    out = {}
    for name in JUDGED:
        judge = next(f for f in rep.findings if f.kind == "judge" and f.metric == name)
        out[name] = judge.judge_status == "judge drift" and not any(
            f.alarm for f in rep.findings if f.kind == "score" and f.metric == name
        )
    return out


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a study of minutes; the 300 s default is for unit tests
def test_judge_swaps_are_attributed_to_the_judge() -> None:
    r = 60
    res = _parallel(_swap, r)
    for name in JUDGED:
        assert float(np.mean([x[name] for x in res])) >= band(0.95, r)[0], name


def _mix(i: int) -> dict[str, bool]:
    import tempfile

    kind = "mix" if i % 2 == 0 else "simpson"
    base = TrafficConfig(cell_scale=2.5)
    order = np.argsort(base.cell_effects("goal"))
    ramp = np.linspace(1.0, 5.0, base.cells)
    hard, easy = np.empty(base.cells), np.empty(base.cells)
    hard[order], easy[order] = ramp[::-1], ramp
    cfg = dataclasses.replace(
        base,
        mix=(tuple(hard), tuple(easy)),
        shifts={"rubric.goal": -0.6} if kind == "simpson" else {},
        population=(4000, 4000),
    )
    perfect = JudgeProfile(sensitivity=1.0, specificity=1.0, flip=0.0)
    pair = WeekPair(cfg, (study_policy(0.15), study_policy(0.15)), judges=(perfect, perfect))
    with tempfile.TemporaryDirectory() as d:
        b, c = graded_windows(pair, 30_000 + i, Path(d) / "s.db")
    rep = compare_windows(b, c, by=BY, bootstrap=0, min_effects={"rubric.goal": 0.02})
    goal = next(f for f in rep.findings if f.metric == "rubric.goal" and f.cohort == "all")
    assert goal.decomposition is not None
    return {
        "simpson": kind == "simpson",
        "significant": goal.significant,
        "alarm_down": goal.alarm and (goal.effect or 0) < 0,
        "aggregate_up": goal.decomposition.total > 0,
        "mix_alarm": next(f for f in rep.findings if f.kind == "mix").alarm,
    }


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a study of minutes; the 300 s default is for unit tests
def test_mix_is_mix_and_simpson_alarms_within_cohorts() -> None:
    res = _parallel(_mix, 120)
    mix = [x for x in res if not x["simpson"]]
    simpson = [x for x in res if x["simpson"]]
    # Mix only: the easy cohorts become common, nothing changes within any cohort.
    assert float(np.mean([x["significant"] for x in mix])) <= band(ALPHA, len(mix))[1]
    assert float(np.mean([x["mix_alarm"] for x in mix])) >= 0.8
    # Simpson: the aggregate rises while every cohort falls. The full study (600 pairs,
    # docs/statistics.md P4) measured a within-cohort alarm in 71.3% of reports, short of
    # the 80% goal on a judged sample this size; this guards that figure, not the goal.
    assert float(np.mean([x["aggregate_up"] for x in simpson])) >= 0.9
    assert float(np.mean([x["alarm_down"] for x in simpson])) >= band(0.713, len(simpson))[0]
