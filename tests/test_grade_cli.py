import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from convsim._assets import tau_airline_runs
from convsim.cli import cli
from convsim.datasets import ReadReport, write_jsonl
from convsim.formats import read_tau_bench
from convsim.grade import read_scores
from convsim.trace import Score

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("grade") / "tau.jsonl"
    write_jsonl(path, read_tau_bench(tau_airline_runs(), report=ReadReport(file="x")))
    return path


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_grade_with_offline_judges(traces: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    code, stdout, _ = run(
        "grade", str(traces), "--rubrics", str(ROOT / "rubrics"), "--out", str(out), "--json", "-"
    )
    assert code == 0
    report = json.loads(stdout)
    assert report["graded"] == 200 and report["failures"] == 0
    by = report["by_score"]
    assert by["outcome"]["mean"] == 0.42 and by["outcome"]["n"] == 200
    assert by["rubric.goal_completion"]["judge_model"] == "offline-rules"
    assert by["rubric.goal_completion"]["calibrated"] is False
    scores = list(read_scores(out))
    assert len(scores) == report["scores"]
    assert all(s.tags.get("domain") == "airline" for s in scores)
    assert not (tmp_path / "scores.jsonl.failures.jsonl").exists()


def test_calibration_against_human_labels(traces: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    assert (
        run(
            "grade",
            str(traces),
            "--rubrics",
            str(ROOT / "rubrics" / "goal_completion.yaml"),
            "--out",
            str(out),
        )[0]
        == 0
    )
    judged = [s for s in read_scores(out) if s.name == "rubric.goal_completion"]
    labels = tmp_path / "labels.jsonl"
    # Human labels: the recorded tau-bench reward is the ground truth for goal completion.
    rewards = {s.conversation_id: s.value for s in read_scores(out) if s.name == "outcome"}
    write_jsonl(
        labels,
        [
            Score(
                conversation_id=s.conversation_id,
                name=s.name,
                value=rewards[s.conversation_id] is True,
                kind="binary",
                source="human",
            )
            for s in judged
        ],
    )
    code, stdout, _ = run(
        "grade",
        str(traces),
        "--rubrics",
        str(ROOT / "rubrics" / "goal_completion.yaml"),
        "--out",
        str(out),
        "--labels",
        str(labels),
        "--json",
        "-",
    )
    assert code == 0
    cal = json.loads(stdout)["calibration"]["rubric.goal_completion"]
    assert cal["labels"] == 200 and cal["calibrated"] is True
    # The offline rules pass almost everything, so against real outcomes they are weak:
    assert cal["tnr"] < 0.2 and cal["kappa"] < 0.2
    # Every judged conversation carries a label: the labels are the answer (0.42 passed),
    # and there is nothing left for Rogan-Gladen to correct.
    assert cal["ppi"]["estimate"] == pytest.approx(0.42) and cal["ppi"]["unlabelled"] == 0
    assert cal["corrected_pass_rate"]["estimate"] is None
    assert "labels' own mean" in cal["corrected_pass_rate"]["reason"]


def test_corrected_rates_use_the_unlabelled_and_name_unmatched_labels(
    traces: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scores.jsonl"
    goal = str(ROOT / "rubrics" / "goal_completion.yaml")
    assert run("grade", str(traces), "--rubrics", goal, "--out", str(out))[0] == 0
    scores = list(read_scores(out))
    judge = {s.conversation_id: s.value is True for s in scores if s.name.startswith("rubric.")}
    truth = {s.conversation_id: s.value is True for s in scores if s.name == "outcome"}
    ids = sorted(judge)
    chosen = ids[::4]  # 50 of the 200, every fourth
    labels = tmp_path / "labels.jsonl"
    rows = [
        Score(
            conversation_id=c,
            name="rubric.goal_completion",
            value=truth[c],
            kind="binary",
            source="human",
        )
        for c in chosen
    ]
    # Ten more under the rubric's bare name, which no judge score carries.
    rows += [
        Score(conversation_id=c, name="goal_completion", value=True, kind="binary", source="human")
        for c in ids[1:11]
    ]
    write_jsonl(labels, rows)
    code, stdout, _ = run(
        "grade", str(traces), "--rubrics", goal, "--out", str(out), "--labels", str(labels),
        "--json", "-",
    )  # fmt: skip
    assert code == 0
    report = json.loads(stdout)
    cal = report["calibration"]["rubric.goal_completion"]
    unlabelled = [judge[c] for c in ids if c not in set(chosen)]
    rectifier = sum(truth[c] - judge[c] for c in chosen) / len(chosen)
    assert cal["ppi"]["estimate"] == pytest.approx(sum(unlabelled) / 150 + rectifier)
    assert (cal["ppi"]["labelled"], cal["ppi"]["unlabelled"]) == (50, 150)
    assert cal["judge_mean"] == pytest.approx(sum(judge.values()) / 200)
    assert report["unmatched_labels"] == {
        "count": 10,
        "names": {"goal_completion": 10},
        "did_you_mean": {"goal_completion": "rubric.goal_completion"},
    }
    code, text, _ = run(
        "grade", str(traces), "--rubrics", goal, "--out", str(out), "--labels", str(labels)
    )
    assert "corrected (PPI)" in text and "Rogan-Gladen" in text
    assert "did you mean rubric.goal_completion?" in text


def test_a_labels_file_without_labels_is_refused_before_any_judging(
    traces: Path, tmp_path: Path
) -> None:
    goal = str(ROOT / "rubrics" / "goal_completion.yaml")
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"hello": 1}\nnot json\n')
    out = tmp_path / "scores.jsonl"
    code, _, err = run(
        "grade", str(traces), "--rubrics", goal, "--out", str(out), "--labels", str(garbage)
    )
    assert code == 2
    assert f"{garbage}: no human labels (2 lines read, 2 not score lines" in err
    assert f"first problem: {garbage}:1:" in err and "Traceback" not in err
    assert not out.exists()  # refused before the judges ran
    # Model scores only: still no human label.
    judged = tmp_path / "judged.jsonl"
    write_jsonl(
        judged,
        [
            Score(
                conversation_id="c",
                name="rubric.goal_completion",
                value=True,
                kind="binary",
                source="model",
            )
        ],
    )
    code, _, err = run(
        "grade", str(traces), "--rubrics", goal, "--out", str(out), "--labels", str(judged)
    )
    assert code == 2 and "0 not score lines, 1 scores without source: human" in err
    # One good label among garbage: calibration runs and says what it ignored.
    mixed = tmp_path / "mixed.jsonl"
    label = Score(
        conversation_id="c",
        name="rubric.goal_completion",
        value=True,
        kind="binary",
        source="human",
    )
    mixed.write_text("garbage\n" + label.model_dump_json() + "\n")
    code, stdout, _ = run(
        "grade", str(traces), "--rubrics", goal, "--out", str(out), "--labels", str(mixed),
        "--json", "-",
    )  # fmt: skip
    assert code == 0
    (note,) = json.loads(stdout)["label_notes"]
    assert note.startswith(f"1 of 2 lines of {mixed} are not score lines and were ignored")


def test_checks_file_and_failures(traces: Path, tmp_path: Path) -> None:
    checks = tmp_path / "checks.yaml"
    checks.write_text(
        "expectations:\n  - {type: tool_called, name: get_user_details}\n  - {type: bogus}\n"
        "forbidden_tools: [cancel_reservation]\nsignals: false\npii: false\n"
    )
    out = tmp_path / "s.jsonl"
    code, stdout, _ = run(
        "grade", str(traces), "--checks", str(checks), "--out", str(out), "--json", "-"
    )
    assert code == 0
    report = json.loads(stdout)
    assert report["failures"] == 200 and report["failures_by_type"] == {"invalid_check": 200}
    assert "outcome" not in report["by_score"]  # a broken check never yields a verdict
    assert 0 < report["by_score"]["guardrail.forbidden_tools"]["mean"] < 1
    failures = (tmp_path / "s.jsonl.failures.jsonl").read_text().splitlines()
    assert len(failures) == 200 and "unknown expectation type 'bogus'" in failures[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("forbidden_tool: [x]\n")
    code, _, err = run("grade", str(traces), "--checks", str(bad), "--out", str(out))
    assert code == 2 and "forbidden_tool: Extra inputs are not permitted" in err
