import base64
import json
import time
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings

from convsim.formats import message_from_otel, to_otel_request
from convsim.formats.otel import normalize_id
from convsim.trace import AssistantMessage, Conversation, ToolMessage, UserMessage
from tests.formats._helpers import DATA, golden, run_import
from tests.formats._roundtrip import otel_conversations

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_golden_session_and_legacy_events() -> None:
    convs, report = golden("otel", "otel_travel.json")
    assert (report.read, report.kept, report.rejected) == (2, 2, 0)
    lisbon, fx = convs
    assert lisbon.id == "conv-lisbon-7"
    assert [m.role for m in lisbon.messages] == [
        "system", "user", "assistant", "tool", "tool", "assistant",
        "user", "assistant", "tool", "assistant",
    ]  # fmt: skip
    first = lisbon.messages[2]
    assert isinstance(first, AssistantMessage)
    assert [c.id for c in first.tool_calls] == ["call_w1", "call_w2"]  # parallel calls
    assert first.model == "gpt-4.1-2025-04-14" and first.latency_ms == 1200.0
    assert first.usage is not None and first.usage.input_tokens == 812
    porto = lisbon.messages[4]
    assert isinstance(porto, ToolMessage) and porto.is_error and porto.latency_ms == 10010.0
    # the tool span sent twice by a retrying exporter is read once
    assert sum(isinstance(m, ToolMessage) for m in lisbon.messages) == 3
    assert [(s.name, s.kind, s.message_index) for s in lisbon.scores] == [
        ("helpfulness", "continuous", 9),
        ("helpfulness.label", "categorical", 9),
    ]
    # legacy events, base64 ids, grouping by session.id, results only in tool spans
    assert fx.id == "sess-fx-1"
    assert fx.provenance is not None
    assert "trace:7d3e1a9c2b4f5e60718293a4b5c6d7e8" in fx.provenance.source_ids
    fx_results = [m for m in fx.messages if isinstance(m, ToolMessage)]
    assert [(m.tool_call_id, m.is_error) for m in fx_results] == [
        ("call_fx1", False),
        ("call_fx2", True),
    ]
    assert fx_results[0].content == '{"amount":92.31,"currency":"EUR"}'
    assert fx.tool_calls()[1].arguments is None  # malformed arguments kept raw
    # Kept verbatim is not lost: the notes say where, and nothing counts as lossy.
    assert report.lossy == 0 and all("kept verbatim" in n.message for n in report.notes)


def test_ids_hex_and_base64() -> None:
    assert normalize_id("S/kvNXezTaajzpKdDg5HNg==", 16) == TRACE
    assert normalize_id(TRACE.upper(), 16) == TRACE
    assert normalize_id("ABEiM0RVZnc=", 8) == "0011223344556677"
    assert normalize_id("", 8) is None and normalize_id(7, 8) is None


def _strip(conv: Conversation) -> dict[str, Any]:
    return conv.model_dump(mode="json", exclude={"provenance"})


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(otel_conversations())
def test_round_trip_is_lossless(
    tmp_path_factory: pytest.TempPathFactory, conv: Conversation
) -> None:
    path = tmp_path_factory.mktemp("rt") / "t.jsonl"
    path.write_text(json.dumps(to_otel_request(conv)) + "\n")
    (back,), report, _ = run_import("otel", path)
    assert report.rejected == 0
    assert _strip(back) == _strip(conv)


def _chat(span_id: str, inputs: list[Any], outputs: list[Any], start: int, **extra: Any) -> Any:
    attrs = [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps(inputs)}},
        {"key": "gen_ai.output.messages", "value": {"stringValue": json.dumps(outputs)}},
    ]
    attrs += [{"key": k, "value": {"stringValue": v}} for k, v in extra.items()]
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "name": "chat",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 1000),
        "attributes": attrs,
    }


def _tool(span_id: str, call_id: str, result: str, parent: str | None = None) -> Any:
    span: dict[str, Any] = {
        "traceId": TRACE,
        "spanId": span_id,
        "name": "execute_tool lookup",
        "startTimeUnixNano": "5",
        "endTimeUnixNano": "6",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
            {"key": "gen_ai.tool.call.id", "value": {"stringValue": call_id}},
            {"key": "gen_ai.tool.call.result", "value": {"stringValue": result}},
        ],
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def _request(*spans: Any) -> dict[str, Any]:
    return {"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}


def _text(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def _write(tmp_path: Path, *requests: Any) -> Path:
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in requests))
    return path


def test_edited_message_is_kept_as_a_branch(tmp_path: Path) -> None:
    hi, bye = _text("user", "book Paris"), _text("user", "book Rome")
    a1, a2 = _text("assistant", "Paris booked"), _text("assistant", "Rome booked")
    path = _write(
        tmp_path,
        _request(
            _chat("0000000000000001", [hi], [a1], 10),
            _chat("0000000000000002", [bye], [a2], 20),
        ),
    )
    (conv,), report, _ = run_import("otel", path)
    assert [m.text for m in conv.messages] == ["book Rome", "Rome booked"]
    (branch,) = cast(list[dict[str, Any]], conv.metadata["branches"])
    assert branch["kind"] == "edited" and branch["at"] == 0
    assert [m["content"] for m in branch["messages"]] == ["book Paris", "Paris booked"]
    assert conv.signals.edits == 1 and report.lossy == 0  # the branch is set aside, not lost
    assert "history edited at message 0" in report.notes[0].message
    assert report.notes[0].line == 1 and "spans.1" in (report.notes[0].field or "")


def test_nested_duplicate_and_trimmed_history_add_nothing(tmp_path: Path) -> None:
    u1, a1 = _text("user", "one"), _text("assistant", "uno")
    u2, a2 = _text("user", "two"), _text("assistant", "dos")
    sys = {"role": "system", "parts": [{"type": "text", "content": "translate"}]}
    wrapper = _chat("0000000000000001", [sys, u1], [a1], 10)
    inner = _chat("0000000000000002", [sys, u1], [a1], 11, **{"gen_ai.response.model": "m-1"})
    inner["parentSpanId"] = "0000000000000001"
    trimmed = _chat("0000000000000003", [sys, a1, u2], [a2], 30)  # first user turn dropped
    (conv,), report, _ = run_import("otel", _write(tmp_path, _request(wrapper, inner, trimmed)))
    assert [m.text for m in conv.messages] == ["translate", "one", "uno", "two", "dos"]
    assert isinstance(conv.messages[2], AssistantMessage) and conv.messages[2].model == "m-1"
    assert "branches" not in conv.metadata and report.notes == []


def test_tool_result_with_no_call_rejects_that_conversation_only(tmp_path: Path) -> None:
    good = _request(_chat("0000000000000001", [_text("user", "hi")], [_text("assistant", "yo")], 1))
    other = "0af7651916cd43dd8448eb211c80319c"
    stray_chat = _chat("00000000000000a1", [_text("user", "x")], [_text("assistant", "y")], 1)
    stray_tool = _tool("00000000000000a2", "call_nowhere", "42")
    stray_chat["traceId"] = stray_tool["traceId"] = other
    path = _write(tmp_path, good, _request(stray_chat, stray_tool))
    convs, report, rejected = run_import("otel", path)
    assert [c.id for c in convs] == [TRACE]
    assert (report.read, report.kept, report.rejected) == (2, 1, 1)
    (issue,) = report.issues
    assert issue.file == str(path) and issue.line == 2
    assert issue.field == "resourceSpans.0.scopeSpans.0.spans.1.attributes[gen_ai.tool.call.id]"
    assert "'call_nowhere'" in issue.message and f"conversation {other!r}" in issue.message
    assert json.loads(rejected[0])["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"]


def test_cycles_missing_ids_wrong_types_and_truncation(tmp_path: Path) -> None:
    a = _chat("0000000000000001", [_text("user", "q")], [_text("assistant", "a")], 1)
    b = _chat(
        "0000000000000002",
        [_text("user", "q"), _text("assistant", "a"), _text("user", "q2")],
        [_text("assistant", "a2")],
        2,
    )
    a["parentSpanId"], b["parentSpanId"] = "0000000000000002", "0000000000000001"  # a cycle
    no_trace = dict(a, traceId=None)
    bad_attrs = dict(a, spanId="0000000000000009", attributes="oops")
    lines = [
        json.dumps(_request(a, b, no_trace)),
        json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [bad_attrs]}]}]}).replace(
            TRACE, "1" * 32
        ),
        json.dumps({"hello": 1}),
        json.dumps(_request(a))[:40],
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    convs, report, _ = run_import("otel", path)
    (conv,) = convs
    assert [m.text for m in conv.messages] == ["q", "a", "q2", "a2"]
    assert any("loops" in n.message for n in report.notes)
    problems = {(i.line, i.field) for i in report.issues}
    assert (1, "resourceSpans.0.scopeSpans.0.spans.2.traceId") in problems
    assert (2, "resourceSpans.0.scopeSpans.0.spans.0.attributes") in problems
    assert (3, "resourceSpans") in problems
    assert any(i.line == 4 and "invalid JSON" in i.message for i in report.issues)
    assert report.read == report.kept + report.rejected == 5


def test_unreadable_message_attribute_is_kept_and_reported(tmp_path: Path) -> None:
    span = _chat("0000000000000001", [_text("user", "q")], [_text("assistant", "a")], 1)
    span["attributes"][1]["value"]["stringValue"] = '[{"role":"user","parts":[{"ty'
    later = _chat(
        "0000000000000002",
        [_text("user", "q"), _text("assistant", "a"), _text("user", "q2")],
        [_text("assistant", "a2")],
        2,
    )
    (conv,), report, _ = run_import("otel", _write(tmp_path, _request(span, later)))
    assert [m.text for m in conv.messages] == ["q", "a", "q2", "a2"]
    unreadable = cast(list[dict[str, Any]], conv.metadata["otel.unreadable"])
    assert unreadable[0]["attribute"] == "gen_ai.input.messages"
    assert "not valid JSON" in report.notes[0].message


def test_no_content_captured_imports_the_structure_and_says_so(tmp_path: Path) -> None:
    span = _chat("0000000000000001", [], [], 1)
    span["attributes"] = span["attributes"][:1]
    convs, report, _ = run_import("otel", _write(tmp_path, _request(span)))
    assert (report.kept, report.rejected) == (1, 0)
    (conv,) = convs
    assert conv.metadata["content_captured"] is False
    (message,) = conv.messages
    assert isinstance(message, AssistantMessage) and message.content is None
    assert any("CAPTURE_MESSAGE_CONTENT" in n.message for n in report.notes)


def test_message_schema_parts() -> None:
    msgs, notes = message_from_otel(
        {
            "role": "user",
            "parts": [
                {"type": "tool_call_response", "id": "c1", "result": {"ok": True}},
                {"type": "text", "content": "and also"},
                {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "AAA"},
            ],
        },
        "m",
    )
    assert isinstance(msgs[0], ToolMessage) and msgs[0].content == '{"ok":true}'
    assert msgs[0].parts is not None and len(msgs[0].parts) == 2
    assert notes == []
    (user,), notes = message_from_otel(
        {"role": "user", "parts": [{"type": "x_new"}], "lang": "en"}, "m"
    )
    assert isinstance(user, UserMessage) and user.metadata == {"lang": "en"} and len(notes) == 2


def _deep_trace(n: int) -> dict[str, Any]:
    # One trace of n spans in a single parent chain: every tenth a chat span re-sending
    # the same history (duplicates to drop), the others plain HTTP spans, one tool span.
    history = [_text("user", "start")]
    call = [{"role": "assistant", "parts": [{"type": "tool_call", "id": "c", "name": "t"}]}]
    spans: list[Any] = [_chat(f"{1:016x}", history, call, 1)]
    for i in range(2, n):
        if i % 10 == 0:
            span = _chat(f"{i:016x}", history, call, i)
        else:
            span = {
                "traceId": TRACE,
                "spanId": f"{i:016x}",
                "name": "GET /db",
                "startTimeUnixNano": str(i),
                "endTimeUnixNano": str(i + 1),
                "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}],
            }
        span["parentSpanId"] = f"{i - 1:016x}"
        spans.append(span)
    spans.append(_tool(f"{n:016x}", "c", "done", parent=f"{n - 1:016x}"))
    return _request(*spans)


def test_a_hundred_thousand_spans_in_one_trace_scale_linearly(tmp_path: Path) -> None:
    timings: dict[int, float] = {}
    for n in (10_000, 100_000):
        path = tmp_path / f"{n}.jsonl"
        path.write_text(json.dumps(_deep_trace(n)) + "\n")
        started = time.perf_counter()
        (conv,), report, _ = run_import("otel", path)
        timings[n] = time.perf_counter() - started
        assert [m.role for m in conv.messages] == ["user", "assistant", "tool"]
        assert report.notes == []
    # Linear is about 10x; quadratic would be about 100x.
    assert timings[100_000] / timings[10_000] < 30, timings


def test_base64_and_hex_copies_of_one_trace_merge(tmp_path: Path) -> None:
    span = _chat("0000000000000001", [_text("user", "q")], [_text("assistant", "a")], 1)
    b64 = dict(span, traceId=base64.b64encode(bytes.fromhex(TRACE)).decode())
    (conv,), _, _ = run_import("otel", _write(tmp_path, _request(span), _request(b64)))
    assert len(conv.messages) == 2


def test_golden_file_is_hand_written() -> None:
    assert (DATA / "otel_travel.json").stat().st_size > 1000


def test_only_what_is_not_kept_anywhere_makes_a_conversation_lossy(tmp_path: Path) -> None:
    span = _chat(
        "0000000000000001",
        [_text("user", "hi")],
        [_text("assistant", "hello")],
        1,
        **{"app.flavour": "kept verbatim"},
    )
    span["events"] = [
        {
            "name": "gen_ai.evaluation.result",
            "attributes": [
                {"key": "gen_ai.evaluation.name", "value": {"stringValue": "tone"}},
                {"key": "gen_ai.evaluation.score.label", "value": {"stringValue": "warm"}},
                {"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": 0.8}},
                {"key": "convsim.score.kind", "value": {"stringValue": "categorical"}},
            ],
        }
    ]
    (conv,), report, _ = run_import("otel", _write(tmp_path, _request(span)))
    assert [s.value for s in conv.scores] == ["warm"]
    # The extra attribute is kept (a note, not a loss); the numeric value of a
    # categorical score has no home, so this conversation is lossy.
    assert report.lossy == 1
    lost = [n for n in report.notes if n.lost]
    assert len(lost) == 1 and lost[0].message.startswith("not kept: score 'tone'")
    assert any("kept verbatim" in n.message and not n.lost for n in report.notes)
