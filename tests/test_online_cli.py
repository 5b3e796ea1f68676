import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from convsim._assets import tau_airline_runs
from convsim.cli import cli
from convsim.datasets import ReadReport, write_jsonl
from convsim.formats import read_tau_bench
from convsim.grade import read_scores
from convsim.store import SQLiteStore

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("online") / "week.jsonl"
    write_jsonl(path, read_tau_bench(tau_airline_runs(), report=ReadReport(file="x")))
    return path


def test_online_window_samples_judges_stores_and_queues(week: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    scores_file, log = tmp_path / "scores.jsonl", tmp_path / "decisions.jsonl"
    args = [
        "online",
        str(week),
        "--policy",
        str(ROOT / "examples" / "sampling.yaml"),
        "--window",
        "2026-W48",
        "--rubrics",
        str(ROOT / "rubrics"),
        "--store",
        str(store),
        "--out",
        str(scores_file),
        "--log",
        str(log),
        "--review-top",
        "5",
        "--json",
        "-",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["conversations"] == 200 and 0 < summary["judged"] < 200
    # Every escalation (a transfer to a human) is judged: the policy samples them at 100%.
    assert (
        summary["by_rule"]["human_handoff"]["judged"] == summary["by_rule"]["human_handoff"]["seen"]
    )
    decisions = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(decisions) == 200
    judged = {d["conversation_id"] for d in decisions if d["sampled"] and not d["budget_skipped"]}
    scores = list(read_scores(scores_file))
    rubric = [s for s in scores if s.name.startswith("rubric.") and not s.anchor]
    assert {s.conversation_id for s in rubric} == judged
    assert all(s.inclusion_prob is not None and s.window == "2026-W48" for s in rubric)
    assert all(s.sampling_rule for s in rubric)
    # The anchor set (300 by default; this window has 200) is judged again, apart.
    anchors = [s for s in scores if s.anchor]
    assert {s.conversation_id for s in anchors} == {d["conversation_id"] for d in decisions}
    assert all(s.inclusion_prob is None and s.name.startswith("rubric.") for s in anchors)
    assert summary["anchors"] == {"conversations": 200, "added": 200, "scores": len(anchors)}
    guard = [s for s in scores if s.name == "guardrail.pii"]
    assert len(guard) == 200  # deterministic checks run on all traffic
    with SQLiteStore(store) as st:
        assert len(list(st.scores(window="2026-W48"))) == len(scores)
        assert len(st.review_items("2026-W48")) == 5
    again = CliRunner().invoke(cli, [*args[:-2], "--log", str(tmp_path / "d2.jsonl")])
    assert again.exit_code == 0
    assert (tmp_path / "d2.jsonl").read_text() == log.read_text()  # decisions reproduce
    assert "anchor set of 200 judged again" in again.stdout and "added" not in again.stdout


def test_bad_policy_is_a_usage_error(week: Path, tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("rules:\n  - name: x\n    rate: 3\n")
    result = CliRunner().invoke(
        cli,
        [
            "online",
            str(week),
            "--policy",
            str(bad),
            "--window",
            "w",
            "--store",
            str(tmp_path / "s.db"),
        ],
    )
    assert result.exit_code == 2 and f"{bad}: rules.0.rate" in result.stderr


def test_by_adds_the_whole_window_and_a_census_post_stratifies(week: Path, tmp_path: Path) -> None:
    base = [
        "online",
        str(week),
        "--policy",
        str(ROOT / "examples" / "sampling.yaml"),
        "--window",
        "w",
        "--store",
        str(tmp_path / "s.db"),
        "--review-top",
        "0",
        "--by",
        "task",
    ]
    runner = CliRunner()
    plain = runner.invoke(cli, [*base, "--json", "-"])
    assert plain.exit_code == 0, plain.output
    rows = [e for e in json.loads(plain.stdout)["estimates"] if e["score"] == "outcome"]
    assert [r["group"] for r in rows][:2] == [None, "0"] and len(rows) == 51
    assert rows[0]["n"] == 200 and rows[0]["weighted"] == pytest.approx(0.42)
    # A census that says task 0 is half of all traffic weighs it accordingly.
    census = tmp_path / "census.yaml"
    census.write_text("\n".join([f'"{t}": 4' for t in range(1, 50)] + ['"0": 196']) + "\n")
    stratified = runner.invoke(cli, [*base, "--census", str(census), "--json", "-"])
    assert stratified.exit_code == 0, stratified.output
    est = json.loads(stratified.stdout)["estimates"]
    whole = next(e for e in est if e["score"] == "outcome" and e["group"] is None)
    task0 = next(e for e in est if e["score"] == "outcome" and e["group"] == "0")
    others = [
        e["weighted"] for e in est if e["score"] == "outcome" and e["group"] not in (None, "0")
    ]
    assert whole["method"] == "post-stratified"
    assert whole["weighted"] == pytest.approx(0.5 * task0["weighted"] + 0.5 * sum(others) / 49)
    # A census that misses a group, or comes without --by, is a usage error.
    census.write_text('"0": 10\n')
    before = (tmp_path / "s.db").read_bytes()
    missing = runner.invoke(cli, [*base, "--census", str(census)])
    assert missing.exit_code == 2
    assert f"{census}: no size for task = 1, 10, 11, 12, 13, which the window holds" in (
        missing.stderr
    )
    assert (tmp_path / "s.db").read_bytes() == before  # refused before anything was stored
    alone = runner.invoke(cli, [*base[:-2], "--census", str(census)])
    assert alone.exit_code == 2 and "add --by TAG" in alone.stderr


def test_online_corrects_the_judges_window_rate_with_labels(week: Path, tmp_path: Path) -> None:
    args = [
        "online",
        str(week),
        "--policy",
        str(ROOT / "examples" / "sampling.yaml"),
        "--window",
        "w",
        "--rubrics",
        str(ROOT / "rubrics" / "goal_completion.yaml"),
        "--store",
        str(tmp_path / "s.db"),
        "--review-top",
        "0",
        "--out",
        str(tmp_path / "scores.jsonl"),
        "--json",
        "-",
    ]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    sample = [
        s
        for s in read_scores(tmp_path / "scores.jsonl")
        if s.name == "rubric.goal_completion" and not s.anchor
    ]
    outcome = {
        s.conversation_id: s.value
        for s in read_scores(tmp_path / "scores.jsonl")
        if s.name == "outcome"
    }
    labelled = sample[::2]
    labels = tmp_path / "labels.jsonl"
    write_jsonl(
        labels,
        [
            s.model_copy(update={"source": "human", "value": outcome[s.conversation_id] is True})
            for s in labelled
        ],
    )
    result = CliRunner().invoke(cli, [*args, "--labels", str(labels), "--label-strata", "domain"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    cal = summary["calibration"]["rubric.goal_completion"]
    assert cal["labels"] == len(labelled) and cal["ppi"]["labelled"] == len(labelled)
    assert cal["ppi"]["unlabelled"] == len(sample) - len(labelled)
    assert cal["ppi"]["strata"] == 1 and summary["label_strata"] == "domain"
    assert summary["unmatched_labels"]["count"] == 0
    # The judged sample is weighted back to the window: escalations (judged at 100%)
    # count once, routine traffic (10%) ten times, in both parts of the estimate.
    chosen = {s.conversation_id for s in labelled}

    def weighted(pairs: list[tuple[float, float]]) -> float:
        return sum(w * x for w, x in pairs) / sum(w for w, _ in pairs)

    judge_part = weighted(
        [
            (1 / (s.inclusion_prob or 1), float(s.value))
            for s in sample
            if s.conversation_id not in chosen
        ]
    )
    rectifier = weighted(
        [
            (
                1 / (s.inclusion_prob or 1),
                float(outcome[s.conversation_id] is True) - float(s.value),
            )
            for s in labelled
        ]
    )
    assert len({s.inclusion_prob for s in sample}) > 1
    assert cal["ppi"]["estimate"] == pytest.approx(judge_part + rectifier)


def test_bad_lines_are_reported_and_set_aside_and_an_empty_window_refused(
    week: Path, tmp_path: Path
) -> None:
    lines = week.read_text().splitlines(keepends=True)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(lines[:5]) + '{"id": "broken"\n' + "".join(lines[5:10]))
    store, rejects = tmp_path / "s.db", tmp_path / "rejects.jsonl"
    policy = str(ROOT / "examples" / "sampling.yaml")
    base = ["online", "--policy", policy, "--window", "w1", "--store", str(store)]
    r = CliRunner().invoke(cli, [*base, str(mixed), "--rejects", str(rejects), "--json", "-"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["input"] == {"read": 11, "rejected": 1, "rejects": str(rejects)}
    assert summary["conversations"] == 10
    assert f"{mixed}:6: Invalid JSON: EOF while parsing" in r.stderr
    assert rejects.read_text() == '{"id": "broken"\n'
    # Nothing valid at all: refused before the store is touched.
    before = store.read_bytes()
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(bytes(range(256)) * 4)
    r = CliRunner().invoke(cli, [*base[:-2], "--store", str(store), str(binary)])
    assert r.exit_code == 2
    assert f"{binary}: no conversations to grade (5 lines read, 5 rejected)" in r.stderr
    assert store.read_bytes() == before
