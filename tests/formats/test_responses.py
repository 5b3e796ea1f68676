import json
from pathlib import Path
from typing import Any, cast

from convsim.trace import AssistantMessage, ReasoningPart, SystemMessage
from tests.formats._helpers import golden, run_import


def test_golden_chain_fork_and_conversation() -> None:
    (chain, conv), report = golden("responses", "responses_travel.jsonl")
    assert (report.read, report.kept, report.rejected) == (2, 2, 0)
    assert chain.id == "resp_01"
    assert [m.role for m in chain.messages] == [
        "system", "user", "assistant", "tool", "tool", "assistant",
        "user", "assistant", "tool", "assistant",
    ]  # fmt: skip
    first = chain.messages[2]
    assert isinstance(first, AssistantMessage) and len(first.tool_calls) == 2
    assert first.parts is not None and isinstance(first.parts[0], ReasoningPart)
    assert first.usage is not None and first.usage.reasoning_tokens == 100
    assert [m.id for m in chain.messages if isinstance(m, AssistantMessage)] == [
        "resp_01", "resp_02", "resp_03b", "resp_04",
    ]  # fmt: skip
    (branch,) = cast(list[dict[str, Any]], chain.metadata["branches"])
    assert branch["responses"] == ["resp_03a"] and branch["kind"] == "regenerated"
    assert chain.signals.retries == 1
    assert conv.id == "conv_68a1fx"
    dev = conv.messages[0]
    assert isinstance(dev, SystemMessage) and dev.developer
    last = conv.messages[-1]
    assert isinstance(last, AssistantMessage) and last.finish_reason == "max_output_tokens"
    assert any("web_search_call" in n.message for n in report.notes)


def _response(rid: str, prev: str | None, inputs: Any, outputs: Any) -> str:
    return json.dumps(
        {
            "id": rid,
            "previous_response_id": prev,
            "input": inputs,
            "output": outputs,
            "created_at": 1,
        }
    )


def test_output_with_no_call_and_loops(tmp_path: Path) -> None:
    say = [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}
    ]
    user = [{"role": "user", "content": "hi"}]
    lines = [
        _response("r1", None, user, say),
        _response(
            "r2", "r1", [{"type": "function_call_output", "call_id": "nope", "output": "x"}], say
        ),
        _response("x1", "x2", user, say),
        _response("x2", "x1", user, say),
        _response("s1", None, "plain text input", say),
        json.dumps({"id": 5, "output": []}),
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + "\n")
    convs, report, _ = run_import("responses", path)
    assert sorted(c.id for c in convs) == ["s1", "x1"]
    issue = next(i for i in report.issues if "'nope'" in i.message)
    assert (issue.line, issue.field) == (2, "record.input.0")
    assert any(i.line == 6 and i.field == "record.id" for i in report.issues)
    assert any("loops" in n.message for n in report.notes)
    assert report.read == report.kept + report.rejected == 4


def test_whole_history_resent_without_chain_is_not_repeated(tmp_path: Path) -> None:
    say = [
        {
            "type": "message",
            "id": "m1",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hello"}],
        }
    ]
    again = [{"role": "user", "content": "hi"}, *say, {"role": "user", "content": "bye"}]
    hello = [{"role": "user", "content": "hi"}]
    lines = [
        json.dumps(
            {"id": "a", "conversation": "c", "input": hello, "output": say, "created_at": 1}
        ),
        json.dumps({"id": "b", "conversation": "c", "input": again, "output": [], "created_at": 2}),
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + "\n")
    (conv,), _, _ = run_import("responses", path)
    assert [m.text for m in conv.messages] == ["hi", "hello", "bye", ""]
