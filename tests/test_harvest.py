import json
from pathlib import Path

from click.testing import CliRunner

from convsim.agents import FunctionAgent
from convsim.cli import cli
from convsim.datasets import EvalCaseAdapter, JsonlReader
from convsim.graders import PiiGuardrail, grade_sync
from convsim.harvest import apply_decisions, fill_review_queue, harvest, holdout, near_duplicate_key
from convsim.replay import ReplayOptions, replay
from convsim.runner import RunConfig
from convsim.store import SQLiteStore
from convsim.trace import AssistantMessage, Conversation, Score, UserMessage


def leaky_agent(conversation: Conversation) -> str:
    return "Please write to our supervisor at bob.smith@example.com for that."


def production(i: int, text: str, reply: str) -> Conversation:
    return Conversation(
        id=f"prod-{i}",
        messages=[
            UserMessage(content=text),
            AssistantMessage(content=reply),
            UserMessage(content="ok ###STOP###"),
        ],
        tags={"vertical": "airline"},
        metadata={"termination": "user_stop"},
    )


def scores_of(convs: list[Conversation]) -> list[Score]:
    return [s for c in convs for s in grade_sync(c, [PiiGuardrail()]) if isinstance(s, Score)]


async def test_flagged_conversation_becomes_a_case_that_fails_the_same_way(tmp_path: Path) -> None:
    convs = [
        production(
            1, "I need to change my flight to Friday please", leaky_agent(Conversation(id="x"))
        ),
        production(2, "What is the baggage allowance for economy?", "Two bags of 23 kg each."),
        production(
            3, "I need to change my flight to Friday please", leaky_agent(Conversation(id="x"))
        ),
    ]
    store = SQLiteStore(tmp_path / "s.db")
    added = fill_review_queue(store, "2026-W48", convs, scores_of(convs), limit=10)
    items = store.review_items("2026-W48")
    assert added == 2 and [i["conversation_id"] for i in items] == ["prod-1", "prod-3"]
    assert items[0]["cluster"] == items[1]["cluster"] == near_duplicate_key(convs[0])
    assert "guardrail.pii=False" in items[0]["reasons"][0]
    apply_decisions(
        store,
        [
            {
                "window": "2026-W48",
                "conversation_id": "prod-1",
                "decision": "confirm",
                "label": "pii-leak",
                "expected": [{"type": "final_answer", "regex": "^((?!@).)*$"}],
            },
            {"id": items[1]["id"], "decision": "reject"},
        ],
        reviewer="ana",
    )
    dataset = tmp_path / "cases.jsonl"
    assert harvest(store, dataset, holdout_share=0.0) == (1, 0)
    assert harvest(store, dataset, holdout_share=0.0) == (0, 1)  # never duplicated
    (case,) = list(JsonlReader(dataset, EvalCaseAdapter))
    assert case.provenance is not None
    assert (case.provenance.source, case.provenance.window, case.provenance.conversation_id) == (
        "harvest",
        "2026-W48",
        "prod-1",
    )
    assert (case.provenance.reviewer, case.provenance.label) == ("ana", "pii-leak")
    assert case.split == "test" and case.tags == {"vertical": "airline"}
    assert case.persona and case.conversation is not None
    assert case.expectations == [{"type": "final_answer", "regex": "^((?!@).)*$"}]

    # Replay the harvested cassette against the same agent: it fails the same way.
    replay_store = SQLiteStore(tmp_path / "r.db")
    config = RunConfig(run_id="regress", kind="replay", agent="leaky", progress=False)
    await replay(
        config,
        [case.conversation],
        FunctionAgent(leaky_agent),
        store=replay_store,
        options=ReplayOptions(),
    )
    (result,) = list(replay_store.results("regress"))
    (pii,) = [s for s in grade_sync(result.conversation, [PiiGuardrail()]) if isinstance(s, Score)]
    assert pii.name == "guardrail.pii" and pii.value is False


def test_holdout_is_deterministic_and_near_the_share() -> None:
    picks = [holdout(f"case-{i}", 0.2) for i in range(5000)]
    assert picks == [holdout(f"case-{i}", 0.2) for i in range(5000)]
    assert 0.18 < sum(picks) / 5000 < 0.22


def test_review_and_harvest_commands(tmp_path: Path) -> None:
    store_path = tmp_path / "s.db"
    convs = [production(1, "change my flight", leaky_agent(Conversation(id="x")))]
    with SQLiteStore(store_path) as store:
        fill_review_queue(store, "w", convs, scores_of(convs))
    runner = CliRunner()
    listed = runner.invoke(cli, ["review", "--list", "--store", str(store_path), "--json", "-"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)["pending"] == 1
    no_tty = runner.invoke(cli, ["review", "--store", str(store_path)])
    assert no_tty.exit_code == 2 and "--decisions FILE" in no_tty.stderr
    decisions = tmp_path / "d.yaml"
    decisions.write_text("- {window: w, conversation_id: prod-1, decision: confirm, label: leak}\n")
    done = runner.invoke(
        cli, ["review", "--decisions", str(decisions), "--store", str(store_path), "--json", "-"]
    )
    assert done.exit_code == 0 and json.loads(done.stdout)["confirmed"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {window: w, conversation_id: nope, decision: confirm}\n")
    assert (
        runner.invoke(
            cli, ["review", "--decisions", str(bad), "--store", str(store_path)]
        ).exit_code
        == 2
    )
    out = runner.invoke(
        cli,
        [
            "harvest",
            "--dataset",
            str(tmp_path / "ds.jsonl"),
            "--store",
            str(store_path),
            "--json",
            "-",
        ],
    )
    assert out.exit_code == 0 and json.loads(out.stdout)["added"] == 1
