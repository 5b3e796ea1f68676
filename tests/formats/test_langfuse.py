import json
from pathlib import Path
from typing import Any

from convsim.trace import AssistantMessage, ToolMessage
from tests.formats._helpers import golden, run_import


def test_golden_session_with_scores() -> None:
    (conv,), report = golden("langfuse", "langfuse_travel.json")
    assert (report.read, report.kept, report.rejected) == (1, 1, 0)
    assert conv.id == "sess-lisbon-lf" and conv.metadata["user_id"] == "u-1842"
    assert [m.role for m in conv.messages] == [
        "system", "user", "assistant", "tool", "tool", "assistant", "user", "assistant", "tool",
    ]  # fmt: skip
    first = conv.messages[2]
    assert isinstance(first, AssistantMessage) and first.usage is not None
    assert (first.usage.input_tokens, first.usage.cost_usd) == (812, 0.001992)
    error = conv.messages[4]
    assert isinstance(error, ToolMessage) and error.is_error
    booked = conv.messages[-1]  # only the TOOL observation holds this result
    assert (
        isinstance(booked, ToolMessage)
        and booked.content == '{"status":"confirmed","booking":"BK-2231"}'
    )
    assert isinstance(conv.messages[-2], AssistantMessage)
    assert conv.messages[-2].finish_reason == "tool_calls"
    assert [(s.name, s.kind, s.value, s.message_index) for s in conv.scores] == [
        ("hallucination", "continuous", 0.05, 5),
        ("user_feedback", "binary", False, None),
    ]
    assert conv.signals.thumbs == "down"


def test_standalone_observations_and_bad_traces(tmp_path: Path) -> None:
    obs = {"id": "o1", "traceId": "t9", "type": "GENERATION", "input": "hello?", "output": "hi!"}
    score = {"traceId": "t9", "name": "csat", "value": 4, "dataType": "NUMERIC"}
    path = tmp_path / "lf.jsonl"
    records: list[Any] = [obs, score, {"observations": []}, [1]]
    path.write_text("\n".join(json.dumps(x) for x in records) + "\n")
    convs, report, _ = run_import("langfuse", path)
    (conv,) = convs
    assert [m.text for m in conv.messages] == ["hello?", "hi!"]
    assert conv.scores[0].value == 4.0
    assert [(i.line, i.field) for i in report.issues] == [(3, "record.id"), (4, "record")]
