import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from convsim.formats import conversation_from_anthropic, to_anthropic_record, to_anthropic_request
from convsim.trace import AssistantMessage, Conversation, ReasoningPart, ToolMessage, UserMessage
from tests.formats._helpers import golden, load_records, run_import
from tests.formats._roundtrip import anthropic_conversations


def test_golden_logged_call_and_request() -> None:
    (trip, bank), report = golden("anthropic", "anthropic_travel.jsonl")
    assert (report.read, report.kept, report.rejected, report.lossy) == (2, 2, 0, 0)
    roles = [m.role for m in trip.messages]
    assert roles == [
        "system", "user", "assistant", "tool", "tool", "assistant",
        "user", "assistant", "tool", "user", "assistant",
    ]  # fmt: skip
    calls = trip.messages[2]
    assert isinstance(calls, AssistantMessage) and calls.content == "Let me check both cities."
    assert [c.arguments for c in calls.tool_calls] == [
        {"city": "Lisbon", "days": 2},
        {"city": "Porto", "days": 2},
    ]
    error = trip.messages[4]
    assert isinstance(error, ToolMessage) and error.is_error
    assert error.content == "weather service timed out after 10s"
    thinking = trip.messages[5]
    assert thinking.parts is not None and isinstance(thinking.parts[0], ReasoningPart)
    # one user message with a tool_result and text becomes a tool and a user message
    assert isinstance(trip.messages[8], ToolMessage) and isinstance(trip.messages[9], UserMessage)
    last = trip.messages[-1]
    assert isinstance(last, AssistantMessage)
    assert (last.model, last.finish_reason, last.id) == (
        "claude-sonnet-4-5-20250929",
        "end_turn",
        "msg_01XFDUDYJgAACzvnptvVoYEL",
    )
    assert last.usage is not None and last.usage.cache_read_tokens == 950
    assert bank.id == "support-42" and bank.tags == {"vertical": "banking"}
    redacted = bank.messages[2].parts
    assert redacted is not None and isinstance(redacted[0], ReasoningPart) and redacted[0].redacted
    notes = [str(n) for n in report.notes]
    assert any("cache_creation_input_tokens" in n for n in notes)


def test_export_request_shape() -> None:
    records = load_records("anthropic_travel.jsonl")
    conv = conversation_from_anthropic(records[0])
    lost: list[str] = []
    body = to_anthropic_request(conv, lost=lost)
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["max_tokens"] == 1024 and "id" not in body
    tool_turn = body["messages"][2]
    assert tool_turn["role"] == "user" and [b["type"] for b in tool_turn["content"]] == [
        "tool_result",
        "tool_result",
    ]
    assert tool_turn["content"][1]["is_error"] is True
    assert any("usage" in item for item in lost) and any("model" in item for item in lost)


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(anthropic_conversations())
def test_round_trip_is_lossless(conv: Conversation) -> None:
    lost: list[str] = []
    record = json.loads(json.dumps(to_anthropic_record(conv, lost=lost)))
    assert lost == []
    back = conversation_from_anthropic(record)
    assert back.model_dump(exclude={"provenance"}) == conv.model_dump(exclude={"provenance"})


def test_bad_records_name_record_and_field(tmp_path: Path) -> None:
    ok = {"id": "a", "messages": [{"role": "user", "content": "hi"}]}
    no_call = {
        "id": "b",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}],
            }
        ],
    }
    bad_role = {"id": "c", "messages": [{"role": "robot", "content": "hi"}]}
    bad_error = {
        "id": "d",
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}],
            },
        ],
    }
    path = tmp_path / "a.jsonl"
    path.write_text(
        "\n".join(json.dumps(r) for r in (ok, no_call, bad_role, bad_error)) + '\n{"id":'
    )
    convs, report, rejected = run_import("anthropic", path)
    assert [c.id for c in convs] == ["a"]
    assert (report.read, report.rejected) == (5, 4) and len(rejected) == 4
    issues = [str(i) for i in report.issues]
    assert issues[0].startswith(f"{path}:2: ") and "'toolu_x'" in issues[0]
    assert (
        issues[1] == f"{path}:3: messages.0.role: unknown role 'robot'; expected user or assistant"
    )
    assert issues[2] == f"{path}:4: messages.1.content.0.is_error: expected true or false"
    assert issues[3].startswith(f"{path}:5: invalid JSON")
