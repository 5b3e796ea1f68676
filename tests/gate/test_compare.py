"""Loading runs, choosing the metric, pairing, reliability, drilldown and budgets."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from convsim.gate import (
    COMPLETED_METRIC,
    MISSING_TAG,
    GateError,
    RunData,
    compare_runs,
    load_results_file,
    load_store_run,
    render_junit,
    render_markdown,
    run_from_results,
)
from convsim.store import RunRecord, SQLiteStore

from ._runs import result, score, write_run


def _run(run_id: str, rows: list[tuple[str, int, bool | None]], **kw: object) -> RunData:
    """A run whose outcome scores are given per (case, trial); None means no score."""
    results = [result(run_id, c, t, **kw) for c, t, _ in rows]  # type: ignore[arg-type]
    scores = [score(run_id, c, t, p) for c, t, p in rows if p is not None]
    return run_from_results(results, scores, source=f"{run_id}.jsonl")


def _grid(run_id: str, passes: dict[str, list[bool]]) -> RunData:
    return _run(run_id, [(c, t, p) for c, ps in passes.items() for t, p in enumerate(ps)])


def test_metric_defaults_to_outcome_scores() -> None:
    cand = _grid("c", {"a": [True], "b": [False]})
    base = _grid("b", {"a": [True], "b": [True]})
    rep = compare_runs(cand, base, max_regression=5)
    assert (rep.metric, rep.metric_source) == ("outcome", "score")
    g = rep.comparison.group("all")
    assert (g.candidate_rate, g.baseline_rate, g.worse, g.better) == (0.5, 1.0, 1, 0)


def test_metric_falls_back_to_the_termination_and_says_so() -> None:
    cand = run_from_results(
        [result("c", "a", 0), result("c", "b", 0, termination="max_turns")], source="c"
    )
    base = run_from_results([result("b", "a", 0), result("b", "b", 0)], source="b")
    rep = compare_runs(cand, base, max_regression=5)
    assert (rep.metric, rep.metric_source) == (COMPLETED_METRIC, "termination")
    assert any("neither run has an 'outcome' score" in n for n in rep.notes)
    assert rep.comparison.group("all").candidate_rate == 0.5
    # Naming it explicitly works too, and is not a fallback.
    rep2 = compare_runs(cand, base, max_regression=5, metric=COMPLETED_METRIC)
    assert rep2.metric_source == "termination"
    assert not any("neither run" in n for n in rep2.notes)


def test_outcome_in_one_run_only_is_an_error_naming_the_fix() -> None:
    cand = _grid("c", {"a": [True]})
    base = run_from_results([result("b", "a", 0)], source="base.jsonl")
    with pytest.raises(GateError, match=r"baseline run 'b' \(base.jsonl\) has no 'outcome'"):
        compare_runs(cand, base, max_regression=5)
    with pytest.raises(GateError, match="--scores-baseline"):
        compare_runs(cand, base, max_regression=5)


def test_explicit_metric_must_exist_and_be_binary() -> None:
    cand = run_from_results([result("c", "a", 0, inline={"reward": 1.0, "csat": 0.7})], source="c")
    base = run_from_results([result("b", "a", 0, inline={"reward": 0.0, "csat": 0.9})], source="b")
    with pytest.raises(GateError, match="no 'nope' score.*csat, reward"):
        compare_runs(cand, base, max_regression=5, metric="nope")
    # A 0/1 reward counts as pass/fail; a 0.7 does not.
    rep = compare_runs(cand, base, max_regression=5, metric="reward")
    assert rep.comparison.group("all").delta == 1.0
    with pytest.raises(GateError, match="not pass/fail"):
        compare_runs(cand, base, max_regression=5, metric="csat")


def test_graded_scores_override_scores_inside_the_transcript() -> None:
    r = [result("c", "a", 0, inline={"outcome": False})]
    run = run_from_results(r, [score("c", "a", 0, True)], source="c")
    assert run.trials[0].scores["outcome"] is True


def test_scores_of_another_run_are_ignored_and_an_unmatched_file_is_an_error() -> None:
    r = [result("c", "a", 0)]
    run = run_from_results(r, [score("other", "a", 0, True)], source="c")
    assert "outcome" not in run.trials[0].scores
    with pytest.raises(GateError, match=r"s.jsonl: none of its 1 scores.*1 belong to other"):
        run_from_results(
            r, source="c", graded=[score("other", "a", 0, True)], graded_source="s.jsonl"
        )


def test_results_of_several_runs_or_duplicates_are_errors() -> None:
    with pytest.raises(GateError, match="several runs"):
        run_from_results([result("x", "a", 0), result("y", "a", 0)], source="f")
    with pytest.raises(GateError, match="appears twice"):
        run_from_results([result("x", "a", 0), result("x", "a", 0)], source="f")
    with pytest.raises(GateError, match="no results"):
        run_from_results([], source="f")


def test_errors_that_are_not_the_agents_are_excluded_and_reported() -> None:
    # Two endings that say nothing about the agent, and one conversation without a score.
    cand = run_from_results(
        [
            result("c", "a", 0),
            result("c", "a", 1, termination="infrastructure_error"),
            result("c", "b", 0),
            result("c", "b", 1, termination="voided"),
            result("c", "b", 2),
        ],
        [score("c", "a", 0, True), score("c", "a", 1, False), score("c", "b", 0, True)],
        source="c",
    )
    base = _grid("b", {"a": [True, True], "b": [True, True, True]})
    rep = compare_runs(cand, base, max_regression=5)
    # The infrastructure error is excluded even though it was graded as a failure.
    assert rep.candidate.excluded == {"infrastructure_error": 1, "missing_score": 1, "voided": 1}
    assert rep.candidate.counted == 2 and rep.candidate.conversations == 5
    assert rep.comparison.group("all").candidate_rate == 1.0
    assert any("3 of 5 conversations excluded" in n for n in rep.notes)
    assert rep.candidate.passk is not None
    assert rep.candidate.passk.excluded == rep.candidate.excluded


def test_trials_pair_by_seed_when_the_runs_share_seeds() -> None:
    # Baseline trial 1 (seed 11) failed; the candidate's seed-11 trial hit an
    # infrastructure error, so the baseline's seed-11 trial is left out too.
    base = run_from_results(
        [result("b", "a", 0, seed=10), result("b", "a", 1, seed=11)],
        [score("b", "a", 0, True), score("b", "a", 1, False)],
        source="b",
    )
    cand = run_from_results(
        [
            result("c", "a", 0, seed=10),
            result("c", "a", 1, seed=11, termination="infrastructure_error"),
        ],
        [score("c", "a", 0, True)],
        source="c",
    )
    rep = compare_runs(cand, base, max_regression=5)
    g = rep.comparison.group("all")
    assert (g.candidate_trials, g.baseline_trials) == (1, 1)
    assert g.delta == 0.0
    assert rep.pairing.by_seed == 1 and rep.pairing.by_case == 0
    assert rep.pairing.unpaired_trials == {"candidate": 0, "baseline": 1}
    # Without shared seeds the same data compares all counted trials: 1/1 vs 1/2.
    base2 = run_from_results(
        [result("b", "a", 0, seed=20), result("b", "a", 1, seed=21)],
        [score("b", "a", 0, True), score("b", "a", 1, False)],
        source="b",
    )
    g2 = compare_runs(cand, base2, max_regression=5).comparison.group("all")
    assert (g2.candidate_rate, g2.baseline_rate) == (1.0, 0.5)


def test_cases_in_one_run_only_and_no_overlap() -> None:
    cand = _grid("c", {"a": [True], "x": [True]})
    base = _grid("b", {"a": [True], "y": [False]})
    rep = compare_runs(cand, base, max_regression=5)
    assert rep.pairing.only_candidate == ("x",) and rep.pairing.only_baseline == ("y",)
    assert rep.pairing.cases == 1
    # A case whose every candidate trial was excluded is named, not silently dropped.
    cand2 = run_from_results(
        [result("c", "a", 0), result("c", "z", 0, termination="simulator_error")],
        [score("c", "a", 0, True)],
        source="c",
    )
    base2 = _grid("b", {"a": [True], "z": [True]})
    rep2 = compare_runs(cand2, base2, max_regression=5)
    expected = "no counted trial in one of them (all excluded), not compared: z"
    assert any(expected in n for n in rep2.notes)
    with pytest.raises(GateError, match="no case has a counted trial in both runs"):
        compare_runs(_grid("c", {"x": [True]}), _grid("b", {"y": [True]}), max_regression=5)


def test_groups_by_tag_with_a_missing_value_and_unknown_tags() -> None:
    cand = run_from_results(
        [result("c", "a", 0, vertical="air"), result("c", "b", 0, vertical=None)],
        [score("c", "a", 0, True), score("c", "b", 0, True)],
        source="c",
    )
    base = run_from_results(
        [result("b", "a", 0, vertical="air"), result("b", "b", 0, vertical=None)],
        [score("b", "a", 0, True), score("b", "b", 0, False)],
        source="b",
    )
    rep = compare_runs(cand, base, max_regression=5, by=["vertical"])
    labels = [g.label for g in rep.comparison.groups]
    assert labels == ["all", f"vertical={MISSING_TAG}", "vertical=air"]
    assert rep.comparison.group(f"vertical={MISSING_TAG}").delta == 1.0
    with pytest.raises(GateError, match="no conversation in either run has the tag 'lang'.*"):
        compare_runs(cand, base, max_regression=5, by=["lang"])


def test_reliability_labels_passk_and_score_spread() -> None:
    cand = _grid("c", {"a": [True, True, True], "b": [True, False, False], "c": [False] * 3})
    base = _grid("b", {"a": [True] * 3, "b": [True] * 3, "c": [True] * 3})
    rep = compare_runs(cand, base, max_regression=5)
    rel = rep.candidate
    labels = {c.case_id: c.label for c in rel.cases}
    assert labels == {"a": "stable", "b": "flaky", "c": "stable"}
    assert (rel.flaky_cases, rel.stable_cases) == (1, 2)
    assert rel.passk is not None
    # pass^1 = mean(1, 1/3, 0) = 4/9; pass^3 = mean(1, 0, 0) = 1/3; pass@3 = 2/3.
    assert rel.passk.pass_hat(1) == pytest.approx(4 / 9)
    assert rel.passk.pass_hat(3) == pytest.approx(1 / 3)
    assert rel.passk.pass_at(3) == pytest.approx(2 / 3)
    # Score spread: 4 passes in 9 -> mean 4/9; sample variance with n - 1 = 8.
    stats = rel.scores["outcome"]
    assert stats.n == 9 and stats.mean == pytest.approx(4 / 9)
    assert stats.variance == pytest.approx((4 * (5 / 9) ** 2 + 5 * (4 / 9) ** 2) / 8)
    case_b = next(c for c in rel.cases if c.case_id == "b")
    assert case_b.scores["outcome"].variance == pytest.approx(1 / 3)
    # Cases whose rate changed, most worsened first.
    assert [c.case_id for c in rep.changes] == ["c", "b"]
    single = compare_runs(_grid("c", {"a": [True]}), _grid("b", {"a": [True]}), max_regression=5)
    assert single.candidate.cases[0].label is None


def test_drilldown_percentiles_and_budgets() -> None:
    latencies = [100.0, 200.0, 300.0, 400.0, 1000.0]
    cand = run_from_results(
        [result("c", f"k{i}", 0, latency_ms=ms, cost_usd=0.5) for i, ms in enumerate(latencies)]
        + [result("c", "k9", 0, latency_ms=None, agent_cost_usd=0.02)],
        [score("c", f"k{i}", 0, True) for i in range(5)] + [score("c", "k9", 0, True)],
        source="c",
    )
    base = _grid("b", {f"k{i}": [True] for i in (0, 1, 2, 3, 4, 9)})
    rep = compare_runs(
        cand, base, max_regression=5, latency_budget_ms=500, cost_budget_usd=1.0, by=["vertical"]
    )
    row = next(r for r in rep.drilldown if r.side == "candidate" and r.label == "all")
    # Nearest rank over the five recorded latencies: P50 = 300, P95 = 1000.
    assert (row.latency_ms.n, row.latency_ms.p50, row.latency_ms.p95) == (5, 300.0, 1000.0)
    # The agent's own usage wins over message usage: 0.02 for k9, 0.5 for the rest.
    assert row.cost_usd.n == 6 and row.cost_usd.p95 == 0.5
    assert row.rate == 1.0 and row.cases == 6
    over = [b for b in rep.budgets if b.ok is False]
    assert {(b.group, b.kind) for b in over} == {
        ("all", "latency_ms"),
        ("vertical=retail", "latency_ms"),
    }
    assert not rep.budget_ok and rep.verdict == "regression" and rep.exit_code == 1


def test_markdown_and_junit() -> None:
    cand = _grid("c", {f"k{i}": [i % 2 == 0] for i in range(20)})
    base = _grid("b", {f"k{i}": [True] for i in range(20)})
    rep = compare_runs(cand, base, max_regression=1.5, by=["vertical"], latency_budget_ms=50)
    md = render_markdown(rep)
    assert md.startswith("### convsim compare: **REGRESSION**")
    assert "| vertical=retail | 20 |" in md and "**over budget**" in md
    assert "**Cases that got worse** (10 of 10)" in md
    root = ET.fromstring(render_junit(rep))
    cases = root.findall("./testsuite/testcase")
    names = [(c.get("classname"), c.get("name")) for c in cases]
    assert names == [
        ("convsim.compare.outcome", "all"),
        ("convsim.compare.outcome", "vertical=retail"),
        ("convsim.compare.budget", "latency_ms all"),
        ("convsim.compare.budget", "latency_ms vertical=retail"),
    ]
    assert all(c.find("failure") is not None for c in cases)
    assert root.get("failures") == "4" and root.get("tests") == "4"


def test_load_results_file_with_scores_and_a_bad_line(tmp_path: Path) -> None:
    res, scores = write_run(tmp_path, "r1", {"a": [True, False]})
    with res.open("a", encoding="utf-8") as f:
        f.write("{not json\n")
    run = load_results_file(res, scores=scores)
    assert run.run_id == "r1" and len(run.trials) == 2
    assert [t.scores["outcome"] for t in run.trials] == [True, False]
    assert any("1 unreadable result lines skipped" in n for n in run.notes)


def test_load_store_run(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    with SQLiteStore(tmp_path / "s.db") as store:
        store.start_run(
            RunRecord(
                run_id="r1",
                kind="simulate",
                config_hash="h",
                started_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
        store.write_batch([result("r1", "a", 0), result("r1", "a", 1), score("r1", "a", 0, True)])
        run = load_store_run(store, "r1")
        assert run.source == "store:r1" and len(run.trials) == 2
        assert run.trials[0].scores == {"outcome": True} and run.trials[1].scores == {}
        with pytest.raises(GateError, match=r"no results for run 'nope'.*recent runs: r1"):
            load_store_run(store, "nope")
