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
    corrected = cal["corrected_pass_rate"]
    assert corrected["estimate"] is None or 0 <= corrected["estimate"] <= 1


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
