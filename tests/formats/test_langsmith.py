import json
from pathlib import Path

from convsim.formats.langsmith import lc_to_openai
from convsim.trace import AssistantMessage, ToolMessage
from tests.formats._helpers import golden, run_import


def test_golden_thread_of_two_traces() -> None:
    (conv,), report = golden("langsmith", "langsmith_travel.jsonl")
    assert (report.read, report.kept, report.rejected) == (1, 1, 0)
    assert conv.id == "thread-lisbon"  # not the project's session_id
    assert [m.role for m in conv.messages] == [
        "system", "user", "assistant", "tool", "tool", "assistant", "user", "assistant",
    ]  # fmt: skip
    calls = conv.messages[2]
    assert isinstance(calls, AssistantMessage) and len(calls.tool_calls) == 2
    assert calls.model == "gpt-4.1-2025-04-14" and calls.finish_reason == "tool_calls"
    error = conv.messages[4]
    assert isinstance(error, ToolMessage) and error.is_error
    last = conv.messages[-1]
    assert isinstance(last, AssistantMessage) and last.finish_reason == "stop"
    assert "branches" not in conv.metadata  # LangChain and OpenAI forms of one history agree
    assert [(s.name, s.kind, s.source, s.message_index) for s in conv.scores] == [
        ("user_score", "continuous", "user", 7),
        ("tone", "categorical", "model", None),
    ]


def test_langchain_message_forms() -> None:
    core, rest = lc_to_openai(
        {
            "lc": 1,
            "type": "constructor",
            "id": ["x", "AIMessage"],
            "kwargs": {
                "content": "",
                "tool_calls": [{"id": "c", "name": "f", "args": {"a": 1}}],
                "id": "run-1",
            },
        }
    )
    assert core["tool_calls"][0]["function"] == {"name": "f", "arguments": {"a": 1}}
    assert rest == {"id": "run-1"}
    core, _ = lc_to_openai({"type": "human", "data": {"content": "hi"}})
    assert core == {"role": "user", "content": "hi"}


def test_feedback_for_a_missing_run_and_runs_without_ids(tmp_path: Path) -> None:
    run = {
        "id": "r1",
        "trace_id": "r1",
        "run_type": "llm",
        "dotted_order": "1Zr1",
        "inputs": {"messages": [{"role": "user", "content": "hi"}]},
        "outputs": {"choices": [{"message": {"role": "assistant", "content": "yo"}}]},
    }
    orphan = {"id": "f1", "run_id": "elsewhere", "key": "score", "score": 1}
    child = {"id": "r2", "parent_run_id": "r1", "run_type": "tool"}
    path = tmp_path / "ls.jsonl"
    path.write_text(
        "\n".join(json.dumps(x) for x in (run, orphan, child, {"run_type": "llm"})) + "\n"
    )
    convs, report, _ = run_import("langsmith", path)
    assert [c.id for c in convs] == ["r1"]
    fields = sorted(str(i.field) for i in report.issues)
    assert fields == ["record.id", "record.run_id", "record.trace_id"]
    (orphan_issue,) = [i for i in report.issues if i.field == "record.run_id"]
    assert orphan_issue.line == 2 and "'elsewhere', which is in none of the files" in str(
        orphan_issue
    )
    assert not any("no messages" in i.message for i in report.issues)
