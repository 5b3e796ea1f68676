"""A judge that changes behind an unchanged name is caught through the anchor set, end to end.

Two weeks of production traffic go through `convsim online` with a real litellm judge
on a loopback server (same model name, same rubric, so the same prompt hash), then
through `convsim drift` on the store, as a team runs them week after week.
"""

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from convsim._assets import tau_airline_runs
from convsim.cli import cli
from convsim.datasets import ReadReport, write_jsonl
from convsim.formats import read_tau_bench
from convsim.testing import FakeOpenAIServer

ROOT = Path(__file__).parents[1]
_DATA = re.compile(r"<conversation_data>\n(.*)\n</conversation_data>", re.DOTALL)


def judge(pass_share: float) -> Any:
    """A judge whose verdict is a fixed function of the conversation it reads."""

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        prompt = "\n".join(str(m.get("content")) for m in body["messages"])
        found = _DATA.search(prompt)
        text = found.group(1) if found else prompt
        u = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8
        verdict = "pass" if u < pass_share else "fail"
        content = json.dumps({"reasoning": "read the transcript", "verdict": verdict})
        return {"role": "assistant", "content": content}

    return respond


@pytest.fixture(scope="module")
def weeks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    base = tmp_path_factory.mktemp("anchors")
    convs = list(read_tau_bench(tau_airline_runs(), report=ReadReport(file="x")))
    paths = []
    for week in ("w1", "w2"):
        # New traffic every week: the same recordings under new conversation ids.
        path = base / f"{week}.jsonl"
        write_jsonl(path, [c.model_copy(update={"id": f"{week}-{c.id}"}) for c in convs])
        paths.append(path)
    policy = base / "policy.yaml"
    policy.write_text("default_rate: 0.3\nanchors:\n  size: 40\n")
    rubrics = base / "rubrics"
    rubrics.mkdir()
    shutil.copy(ROOT / "rubrics" / "goal_completion.yaml", rubrics)
    return paths[0], paths[1], policy, rubrics


def online(week: Path, label: str, policy: Path, rubrics: Path, store: Path, url: str) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "online",
            str(week),
            "--policy",
            str(policy),
            "--window",
            label,
            "--rubrics",
            str(rubrics),
            "--judge-model",
            "openai/judge",
            "--judge-api-base",
            url,
            "--store",
            str(store),
            "--review-top",
            "0",
        ],
        env={"OPENAI_API_KEY": "sk-test"},
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("changed", [True, False])
def test_a_judge_that_changed_silently_is_caught_by_the_anchor_set(
    weeks: tuple[Path, Path, Path, Path], tmp_path: Path, changed: bool
) -> None:
    w1, w2, policy, rubrics = weeks
    store = tmp_path / "s.db"
    with FakeOpenAIServer(judge(0.8)) as server:
        online(w1, "2026-W01", policy, rubrics, store, server.url)
    # Week 2: a provider update makes the judge stricter behind the same model name.
    with FakeOpenAIServer(judge(0.4 if changed else 0.8)) as server:
        online(w2, "2026-W02", policy, rubrics, store, server.url)
        anchored = server.requests
    # Week 1's 40 anchors are judged again (and not served from the response cache).
    assert anchored >= 40
    result = CliRunner().invoke(
        cli, ["drift", "2026-W01", "2026-W02", "--store", str(store), "--json", "-"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    [judge_finding] = [f for f in report["findings"] if f["kind"] == "judge"]
    assert judge_finding["metric"] == "rubric.goal_completion"
    assert judge_finding["n_baseline"] == 40
    product = [
        f
        for f in report["findings"]
        if f["kind"] == "score" and f["metric"] == "rubric.goal_completion"
    ]
    if changed:
        assert judge_finding["judge_status"] == "judge drift" and judge_finding["alarm"]
        assert report["summary"]["judge_warnings"] == 1
        # The sample's pass rate fell by about 40 points, yet no product alarm is raised.
        assert product[0]["effect"] < -0.25 and product[0]["significant"]
        assert not any(f["alarm"] for f in product)
        assert all("alarm suppressed" in f["note"] for f in product if f["significant"])
        gate = CliRunner().invoke(
            cli, ["drift", "2026-W01", "2026-W02", "--store", str(store), "--fail-on-alarm"]
        )
        assert gate.exit_code == 1 and "judge: rubric.goal_completion" in gate.stdout
    else:
        assert judge_finding["judge_status"] == "stable on the anchors"
        assert not judge_finding["alarm"] and report["summary"]["judge_warnings"] == 0
        assert not any(f["alarm"] for f in product)
