import json
from collections import Counter
from pathlib import Path

import pytest

from convsim._assets import tau_airline_runs
from convsim.datasets import ReadReport, dump_line, read_conversations, write_jsonl
from convsim.formats import read_openai, read_tau_bench, to_openai_record
from convsim.trace import AssistantMessage, Conversation


@pytest.fixture(scope="module")
def airline() -> list[Conversation]:
    report = ReadReport(file="runs")
    convs = list(read_tau_bench(tau_airline_runs(), report=report))
    assert (report.read, report.kept, report.rejected) == (200, 200, 0)
    return convs


def test_imports_all_conversations_with_linked_tool_calls(airline: list[Conversation]) -> None:
    assert len(airline) == 200
    assert len({c.id for c in airline}) == 200
    calls = sum(len(c.tool_calls()) for c in airline)
    assert calls == 1164
    for conv in airline:
        results = conv.tool_results()
        assert sorted(results) == list(range(len(conv.tool_calls())))
        for pos, call in enumerate(conv.tool_calls()):
            assert results[pos].tool_call_id == call.id
            # tau-bench writes the tool name on its result messages: they must agree.
            assert results[pos].name == call.name


def test_message_counts_match_the_source(airline: list[Conversation]) -> None:
    roles = Counter(m.role for c in airline for m in c.messages)
    assert roles == {"system": 200, "user": 1490, "assistant": 2454, "tool": 1164}


def test_task_trial_and_reward_are_kept(airline: list[Conversation]) -> None:
    by_id = {c.id: c for c in airline}
    conv = by_id["tau-airline-task0-trial0"]
    assert conv.metadata["task_id"] == 0 and conv.metadata["trial"] == 0
    assert conv.tags == {"domain": "airline", "task": "0"}
    (reward,) = conv.scores
    assert reward.name == "reward" and reward.kind == "binary" and reward.value is False
    rewards = [s.value is True for c in airline for s in c.scores if s.name == "reward"]
    assert sum(rewards) == 84  # published pass^1 0.420 over 200 runs
    trials = Counter(int(c.metadata["trial"]) for c in airline)  # type: ignore[arg-type]
    assert trials == {0: 50, 1: 50, 2: 50, 3: 50}


def test_tool_arguments_are_parsed(airline: list[Conversation]) -> None:
    first_call = airline[0].tool_calls()[0]
    assert first_call.name == "get_user_details"
    assert first_call.arguments == {"user_id": "mia_li_3668"}
    assert first_call.arguments_raw is None


def test_canonical_round_trip_is_byte_identical(
    airline: list[Conversation], tmp_path: Path
) -> None:
    first = tmp_path / "a.jsonl"
    second = tmp_path / "b.jsonl"
    write_jsonl(first, airline)
    reread = list(read_conversations(first))
    assert reread == airline
    write_jsonl(second, reread)
    assert first.read_bytes() == second.read_bytes()


def test_openai_export_and_reimport_is_identical(
    airline: list[Conversation], tmp_path: Path
) -> None:
    exported = tmp_path / "openai.jsonl"
    exported.write_text("".join(json.dumps(to_openai_record(c)) + "\n" for c in airline))
    report = ReadReport(file=str(exported))
    back = list(read_openai(exported, report=report))
    assert report.kept == 200
    for original, again in zip(airline, back, strict=True):
        assert again.id == original.id
        assert again.messages == original.messages
        assert again.metadata == original.metadata
        assert again.tags == original.tags
    # And the canonical lines differ only in provenance and the attached scores.
    strip = {"provenance", "scores"}
    for original, again in zip(airline, back, strict=True):
        assert dump_line(original.model_copy(update=dict.fromkeys(strip))) == dump_line(
            again.model_copy(update=dict.fromkeys(strip))
        )


def test_assistant_text_and_tool_call_messages(airline: list[Conversation]) -> None:
    msgs = [m for m in airline[0].messages if isinstance(m, AssistantMessage)]
    assert msgs[0].content and not msgs[0].tool_calls
    assert any(m.tool_calls and m.content is None for m in msgs)


def test_bad_records_are_set_aside_and_counted(tmp_path: Path) -> None:
    good = {
        "task_id": 1,
        "trial": 0,
        "reward": 1.0,
        "info": {},
        "traj": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    }
    no_call = dict(good, task_id=2, traj=[{"role": "tool", "tool_call_id": "x", "content": "?"}])
    bad_type = dict(good, task_id="three")
    path = tmp_path / "runs-airline.json"
    path.write_text(json.dumps([good, no_call, bad_type]))
    report = ReadReport(file=str(path))
    convs = list(read_tau_bench(path, report=report))
    assert [c.id for c in convs] == ["tau-airline-task1-trial0"]
    assert (report.read, report.kept, report.rejected) == (3, 1, 2)
    messages = [str(i) for i in report.issues]
    assert messages[0].startswith(f"{path}: record 2: ")
    assert "matches no" in messages[0] or "answers no earlier" in messages[0]
    assert messages[1].startswith(f"{path}: record 3: task_id: ")


def test_truncated_array_keeps_complete_records(tmp_path: Path) -> None:
    record = {
        "task_id": 1,
        "trial": 0,
        "reward": 0.0,
        "traj": [{"role": "user", "content": "hi"}],
    }
    text = json.dumps([record, dict(record, trial=1), dict(record, trial=2)])
    path = tmp_path / "cut-airline.json"
    path.write_text(text[: len(text) - 30])
    report = ReadReport(file=str(path))
    convs = list(read_tau_bench(path, report=report))
    assert [c.metadata["trial"] for c in convs] == [0, 1]
    assert report.read == report.kept + report.rejected == 3
    assert "truncated" in str(report.issues[0])
