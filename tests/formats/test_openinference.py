import json
from pathlib import Path

from convsim.formats.openinference import unflatten
from convsim.trace import AssistantMessage, ToolMessage
from tests.formats._helpers import golden, run_import


def test_golden_flat_and_nested_spans_in_one_session() -> None:
    (conv,), report = golden("openinference", "openinference_travel.jsonl")
    assert (report.read, report.kept, report.rejected) == (1, 1, 0)
    assert conv.id == "sess-lisbon" and conv.metadata["user_id"] == "u-1842"
    assert [m.role for m in conv.messages] == [
        "system", "user", "assistant", "tool", "tool", "assistant", "user", "assistant",
    ]  # fmt: skip
    calls = conv.messages[2]
    assert isinstance(calls, AssistantMessage) and [c.id for c in calls.tool_calls] == [
        "call_w1",
        "call_w2",
    ]
    assert calls.usage is not None and calls.usage.input_tokens == 812
    error = conv.messages[4]
    assert isinstance(error, ToolMessage) and error.is_error and error.latency_ms == 10010.0
    last = conv.messages[-1]
    assert isinstance(last, AssistantMessage) and last.usage is not None
    assert last.usage.cost_usd == 0.00212
    assert [(s.name, s.kind, s.value, s.source) for s in conv.scores] == [
        ("correctness", "continuous", 0.0, "model"),
        ("correctness.label", "categorical", "incorrect", "model"),
        ("user_thumbs", "categorical", "down", "human"),
    ]


def test_unflatten() -> None:
    flat = {
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.0.message.role": "system",
        "a": 1,
        "a.b": 2,
    }
    assert unflatten(flat) == {
        "llm": {"input_messages": [{"message": {"role": "system"}}, {"message": {"role": "user"}}]},
        "a": {"": 1, "b": 2},
    }
    assert unflatten({"x.99999999999": 1}) == {"x": [1]}  # a huge index makes no huge list


def test_otlp_input_and_tool_without_call(tmp_path: Path) -> None:
    def attr(k: str, v: object) -> dict[str, object]:
        key = "intValue" if isinstance(v, int) else "stringValue"
        return {"key": k, "value": {key: str(v) if isinstance(v, int) else v}}

    trace = "11111111111111111111111111111111"
    llm = {
        "traceId": trace,
        "spanId": "0000000000000001",
        "startTimeUnixNano": "1",
        "attributes": [
            attr("openinference.span.kind", "LLM"),
            attr("llm.input_messages.0.message.role", "user"),
            attr("llm.input_messages.0.message.content", "hi"),
            attr("llm.output_messages.0.message.role", "assistant"),
            attr("llm.output_messages.0.message.content", "hello"),
            attr("llm.token_count.prompt", 5),
        ],
    }
    tool = {
        "traceId": trace,
        "spanId": "0000000000000002",
        "startTimeUnixNano": "2",
        "attributes": [
            attr("openinference.span.kind", "TOOL"),
            attr("tool_call.id", "missing"),
            attr("output.value", "x"),
        ],
    }
    path = tmp_path / "oi.jsonl"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [llm]}]}]}) + "\n")
    (conv,), _, _ = run_import("openinference", path)
    assert [m.text for m in conv.messages] == ["hi", "hello"]
    assert isinstance(conv.messages[1], AssistantMessage) and conv.messages[1].usage is not None
    path.write_text(
        json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [llm, tool]}]}]}) + "\n"
    )
    _, report, rejected = run_import("openinference", path)
    (issue,) = report.issues
    assert issue.field == "resourceSpans.0.scopeSpans.0.spans.1.attributes.tool_call.id"
    assert "'missing'" in issue.message and len(rejected) == 1
